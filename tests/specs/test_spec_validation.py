"""The spec classes check themselves: every problem, with its path, and no secrets."""

from __future__ import annotations

import math
import pickle
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcpvisor.specs import (
    Backoff,
    ConfigError,
    HttpSpec,
    InProcessSpec,
    Problem,
    RestartPolicy,
    ServerSpec,
    SseSpec,
    StdioSpec,
    SupervisorSpec,
    Timeouts,
)
from mcpvisor.specs.servers import redact_url
from tests.strategies import backoffs, supervisor_specs


def _paths(build: Any, *args: Any, **kwargs: Any) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as info:
        build(*args, **kwargs)
    return info.value.paths


# -- names


@pytest.mark.parametrize("name", ["a", "A-1", "files_v2", "_a", "-"])
def test_good_names(name: str) -> None:
    assert StdioSpec(name=name, command="x").name == name


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("a__b", "a__b.name"),
        ("__", "__.name"),
        ("a.b", "a.b.name"),
        ("a b", "a b.name"),
        ("ünï", "ünï.name"),
        ("a/b", "a/b.name"),
        ("", "<unnamed>.name"),
        ("a_", "a_.name"),
        ("_", "_.name"),
    ],
)
def test_bad_names(name: str, path: str) -> None:
    assert _paths(StdioSpec, name=name, command="x") == (path,)


def test_name_with_separator_explains_why() -> None:
    with pytest.raises(ConfigError, match="it separates server and tool names"):
        StdioSpec(name="a__b", command="x")


def test_every_field_problem_is_reported_at_once() -> None:
    paths = _paths(
        StdioSpec,
        name="s",
        command="",
        args=["ok", 3],
        env={"K": 1},
        cwd=2,
        required="no",
        start="soon",
        idle_shutdown=0,
        max_concurrency=True,
        max_isolated=0,
    )
    assert paths == (
        "s.required",
        "s.start",
        "s.idle_shutdown",
        "s.max_concurrency",
        "s.max_isolated",
        "s.command",
        "s.args",
        "s.env.K",
        "s.cwd",
    )


# -- supervisor


def test_duplicate_server_names() -> None:
    spec = StdioSpec(name="a", command="x")
    assert _paths(SupervisorSpec, [spec, HttpSpec(name="a", url="http://h")]) == ("servers.a",)


def test_unknown_group_suggests_a_close_one() -> None:
    with pytest.raises(ConfigError) as info:
        SupervisorSpec([StdioSpec(name="a", command="x", group="dbs")], {"db": "one_for_all"})
    assert str(info.value) == "servers.a.group: unknown group 'dbs'; did you mean 'db'?"


def test_bad_groups() -> None:
    assert _paths(SupervisorSpec, [], {"a__b": "one_for_one", "g": "one_for_everyone"}) == (
        "groups.a__b",
        "groups.g",
    )


def test_not_a_spec() -> None:
    assert _paths(SupervisorSpec, [StdioSpec(name="a", command="x"), "b"]) == ("servers[1]",)


def test_lookup_and_order() -> None:
    a, b = StdioSpec(name="a", command="x"), SseSpec(name="b", url="http://h/sse")
    spec = SupervisorSpec([b, a])
    assert spec.names == ("b", "a")
    assert spec["a"] is a
    with pytest.raises(KeyError):
        spec["c"]


@settings(deadline=None)
@given(supervisor_specs(max_servers=3))
def test_specs_are_hashable_and_equal_specs_hash_equal(spec: SupervisorSpec) -> None:
    rebuilt = SupervisorSpec(list(spec.servers), dict(spec.groups))
    assert rebuilt == spec
    assert hash(rebuilt) == hash(spec)


def test_specs_are_frozen() -> None:
    spec = StdioSpec(name="a", command="x", env={"K": "v"})
    with pytest.raises(AttributeError):
        spec.command = "y"  # type: ignore[misc]
    with pytest.raises(TypeError):
        spec.env["K"] = "w"  # type: ignore[index]


def test_in_process_spec_needs_a_server_object() -> None:
    assert _paths(InProcessSpec, name="e", server=object()) == ("e.server",)


# -- urls


@pytest.mark.parametrize("url", ["http://h", "https://h.example:8443/mcp?x=1", "http://[::1]:80/"])
def test_good_urls(url: str) -> None:
    assert HttpSpec(name="a", url=url).url == url


@pytest.mark.parametrize(
    "url",
    ["ftp://h/", "ws://h/", "h/mcp", "http://", "http:///x", "http://h:99999/", "http://h:x/", 3],
)
def test_bad_urls(url: Any) -> None:
    assert _paths(HttpSpec, name="a", url=url) == ("a.url",)
    assert _paths(SseSpec, name="a", url=url) == ("a.url",)


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("https://user:pw@h/mcp", "https://h/mcp"),
        ("https://h/mcp?token=abc&x", "https://h/mcp?token=***&x=***"),
        ("https://h:8443/mcp", "https://h:8443/mcp"),
        ("http://[::1", "<invalid>"),
        (None, "<invalid>"),
    ],
)
def test_redact_url(url: Any, redacted: str) -> None:
    assert redact_url(url) == redacted


SECRET = "SENTINEL_spec_secret"


def test_reprs_and_errors_mask_secrets() -> None:
    specs: list[ServerSpec] = [
        StdioSpec(name="a", command="x", env={"TOKEN": SECRET}),
        HttpSpec(name="b", url=f"https://u:{SECRET}@h/mcp?k={SECRET}", headers={"A": SECRET}),
        SseSpec(name="c", url="https://h/sse", headers={"A": SECRET}),
    ]
    assert SECRET not in repr(SupervisorSpec(specs))
    with pytest.raises(ConfigError) as info:
        HttpSpec(
            name="b",
            url=f"ftp://u:{SECRET}@h/?k={SECRET}",
            headers={"A": SECRET, "B": 1},  # type: ignore[dict-item]
        )
    assert SECRET not in str(info.value)
    assert info.value.paths == ("b.url", "b.headers.B")


# -- restart policy and timeouts


@pytest.mark.parametrize(
    ("kwargs", "paths"),
    [
        ({"restart": "always"}, ("restart",)),
        ({"max_restarts": -1}, ("max_restarts",)),
        ({"max_restarts": True}, ("max_restarts",)),
        ({"max_restarts": 1.0}, ("max_restarts",)),
        ({"within": 0}, ("within",)),
        ({"within": math.inf}, ("within",)),
        ({"reset_after": -0.1}, ("reset_after",)),
        ({"reset_after": math.nan}, ("reset_after",)),
        ({"backoff": {"initial": 1}}, ("backoff",)),
        ({"within": False, "max_restarts": "5"}, ("max_restarts", "within")),
    ],
)
def test_bad_restart_policies(kwargs: dict[str, Any], paths: tuple[str, ...]) -> None:
    assert _paths(RestartPolicy, **kwargs) == paths


@pytest.mark.parametrize(
    "field", ["connect", "initialize", "request", "shutdown", "probe_timeout", "probe_interval"]
)
@pytest.mark.parametrize("value", [0, -1, math.nan, math.inf, True, "5"])
def test_timeouts_must_be_positive_numbers(field: str, value: Any) -> None:
    assert _paths(Timeouts, **{field: value}) == (field,)


@pytest.mark.parametrize("value", [0, -1, 1.5, True])
def test_probe_misses_is_a_positive_integer(value: Any) -> None:
    assert _paths(Timeouts, probe_misses=value) == ("probe_misses",)


def test_probing_can_be_turned_off() -> None:
    assert Timeouts(probe_interval=None).probe_interval is None


# -- backoff


@pytest.mark.parametrize(
    ("kwargs", "paths"),
    [
        ({"jitter": -0.01}, ("jitter",)),
        ({"jitter": 1.01}, ("jitter",)),
        ({"jitter": math.nan}, ("jitter",)),
        ({"initial": -1}, ("initial",)),
        ({"initial": 2, "max": 1}, ("max",)),
        ({"max": math.inf}, ("max",)),
        ({"multiplier": 0.99}, ("multiplier",)),
        ({"multiplier": True}, ("multiplier",)),
        ({"initial": "1", "max": -1}, ("initial", "max")),
    ],
)
def test_bad_backoffs(kwargs: dict[str, Any], paths: tuple[str, ...]) -> None:
    assert _paths(Backoff, **kwargs) == paths


def test_jitter_bounds_are_inclusive() -> None:
    assert Backoff(jitter=0.0).jitter == 0.0
    assert Backoff(jitter=1.0).jitter == 1.0


def test_backoff_base_doubles_up_to_the_cap() -> None:
    b = Backoff(initial=0.5, max=30, multiplier=2, jitter=0)
    assert [b.base(n) for n in range(1, 10)] == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]
    assert b.delay(3, 0.999) == 2


def test_backoff_edge_shapes() -> None:
    assert Backoff(initial=0, max=0).base(1_000) == 0
    assert Backoff(initial=3, max=10, multiplier=1).base(10**6) == 3
    assert Backoff(initial=7, max=7).base(1) == 7
    assert Backoff(initial=1, max=1e300, multiplier=10).base(10**100) == 1e300
    assert Backoff(initial=5e-324, max=1.0).base(1075) <= 1.0  # overflowed before the fix


def test_full_jitter_spreads_between_zero_and_base() -> None:
    b = Backoff(initial=4, max=4, jitter=1.0)
    assert b.delay(1, 0.0) == 4
    assert b.delay(1, 0.5) == 2
    assert 0 < b.delay(1, 0.999) < 0.01


def test_attempt_and_draw_are_checked() -> None:
    b = Backoff()
    with pytest.raises(ValueError):
        b.base(0)
    with pytest.raises(ValueError):
        b.delay(1, 1.0)
    with pytest.raises(ValueError):
        b.delay(1, -0.1)


@settings(deadline=None)
@given(
    backoffs(),
    st.integers(min_value=1, max_value=10**30),
    st.floats(min_value=0, max_value=1, exclude_max=True),
)
def test_a_delay_never_exceeds_max_nor_goes_negative(b: Backoff, attempt: int, u: float) -> None:
    delay = b.delay(attempt, u)
    assert 0 <= delay <= b.max
    assert b.base(attempt) >= delay
    assert math.isfinite(delay)


@settings(deadline=None)
@given(backoffs(), st.integers(min_value=1, max_value=5000))
def test_base_never_shrinks_as_attempts_grow(b: Backoff, attempt: int) -> None:
    assert b.base(attempt) <= b.base(attempt + 1) <= b.max


# -- errors


def test_config_error_needs_a_problem() -> None:
    with pytest.raises(ValueError):
        ConfigError([])


def test_config_error_renders_one_or_many() -> None:
    assert str(ConfigError([Problem("a.b", "bad")])) == "a.b: bad"
    assert str(ConfigError([Problem("", "bad")])) == "bad"
    many = ConfigError([Problem("a", "x"), Problem("b", "y")])
    assert str(many) == "2 problems:\n  - a: x\n  - b: y"
    assert many.prefixed("mcpServers").paths == ("mcpServers.a", "mcpServers.b")
    assert Problem("", "m").prefixed("p") == Problem("p", "m")


def test_config_error_is_a_value_error_and_pickles() -> None:
    error = ConfigError([Problem("a", "x"), Problem("b", "y")])
    assert isinstance(error, ValueError)
    copy = pickle.loads(pickle.dumps(error))
    assert copy.problems == error.problems
    assert str(copy) == str(error)
