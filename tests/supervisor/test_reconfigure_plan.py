"""The pure reload plan: which servers a new spec adds, removes, restarts or updates in place."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

import mcpvisor as mv
from mcpvisor.supervisor.reconfigure import (
    IN_PLACE_FIELDS,
    changed_fields,
    needs_restart,
    plan_reconfigure,
    reload_event,
    validate,
)
from tests.supervisor.fakes import FakeServer


def stdio(name: str, **kwargs: object) -> mv.StdioSpec:
    return mv.StdioSpec(name=name, command="srv", **kwargs)  # type: ignore[arg-type]


def test_session_fields_restart_and_supervision_fields_apply_in_place() -> None:
    base = stdio("a", env={"K": "v1"})
    cases = {
        "args": attrs.evolve(base, args=("--x",)),
        "env": attrs.evolve(base, env={"K": "v2"}),
        "timeouts.connect": attrs.evolve(base, timeouts=mv.Timeouts(connect=3)),
        "idle_shutdown": attrs.evolve(base, idle_shutdown=5.0),
        "protocol": attrs.evolve(base, protocol="legacy"),
    }
    for field, new in cases.items():
        assert changed_fields(base, new) == (field,)
        assert needs_restart(changed_fields(base, new)), field
    in_place = {
        "required": attrs.evolve(base, required=True),
        "group": attrs.evolve(base, group="g"),
        "restart.max_restarts": attrs.evolve(base, restart=mv.RestartPolicy(max_restarts=1)),
        "timeouts.request": attrs.evolve(base, timeouts=mv.Timeouts(request=1)),
        "max_isolated": attrs.evolve(base, max_isolated=1),
    }
    for field, new in in_place.items():
        assert changed_fields(base, new) == (field,)
        assert not needs_restart(changed_fields(base, new)), field
    assert changed_fields(base, attrs.evolve(base, env={"K": "v1"})) == ()
    assert "timeouts.request" in IN_PLACE_FIELDS


def test_transport_and_in_process_server_identity_count_as_changes() -> None:
    http = mv.HttpSpec(name="a", url="http://127.0.0.1:1/mcp")
    assert changed_fields(stdio("a"), http) == ("transport",)
    one, two = FakeServer("a"), FakeServer("a")
    assert one.spec() == two.spec()  # equality ignores the object: the plan must not
    assert changed_fields(one.spec(), two.spec()) == ("server",)
    assert changed_fields(one.spec(), one.spec()) == ()


def test_the_plan_sorts_every_server_and_names_fields_never_values() -> None:
    old = mv.SupervisorSpec(
        servers=[stdio("a"), stdio("b", group="g"), stdio("c"), stdio("d")],
        groups={"g": "one_for_all", "h": "one_for_one"},
    )
    new = mv.SupervisorSpec(
        servers=[
            stdio("c", env={"TOKEN": "s3cret-value"}),
            stdio("b", group="g"),
            stdio("a", required=True),
            stdio("e", start="lazy"),
        ],
        groups={"g": "rest_for_one", "k": "one_for_all"},
    )
    report = plan_reconfigure(old, new)
    assert report.added == ("e",) and report.removed == ("d",)
    assert report.restarted == ("c",) and report.updated == ("a",)
    assert report.unchanged == ("b",) and report.reordered
    assert dict(report.fields) == {"c": ("env",), "a": ("required",)}
    assert dict(report.groups) == {
        "g": ("one_for_all", "rest_for_one"),
        "h": ("one_for_one", None),
        "k": (None, "one_for_all"),
    }
    text = report.summary()
    assert text == (
        "added e; removed d; restarted c (env); updated a (required); "
        "group g: one_for_all -> rest_for_one; group h: one_for_one -> -; "
        "group k: - -> one_for_all; reordered"
    )
    assert "s3cret" not in text + repr(report) + str(report.to_dict())
    assert report.changed and report.to_dict()["restarted"] == ["c"]
    same = plan_reconfigure(old, old)
    assert not same.changed and same.summary() == "no changes"
    assert same.unchanged == ("a", "b", "c", "d")


def test_validation_comes_first_and_names_the_server_and_field() -> None:
    spec = mv.SupervisorSpec(servers=[stdio("a", group="g")], groups={"g": "one_for_all"})
    object.__setattr__(spec, "groups", {})
    with pytest.raises(mv.ConfigError) as info:
        plan_reconfigure(mv.SupervisorSpec(servers=[]), spec)
    assert info.value.paths == ("servers.a.group",)
    with pytest.raises(mv.MCPVisorError) as usage:
        validate({"servers": []})
    assert isinstance(usage.value, ValueError) and "SupervisorSpec" in str(usage.value)


def test_a_rejected_reload_event_carries_every_problem_on_one_line() -> None:
    error = mv.ConfigError(
        [mv.Problem("servers.a.group", "unknown group 'g'"), mv.Problem("servers.b", "bad")]
    )
    event = reload_event(2.0, error=error)
    assert (event.server, event.kind, event.reason, event.at) == ("*", "reload", "rejected", 2.0)
    assert event.cause == "servers.a.group: unknown group 'g'; servers.b: bad"
    missing = reload_event(1.0, error=FileNotFoundError(2, "No such file", "/x/mcp.json"))
    assert missing.cause == "[Errno 2] No such file: '/x/mcp.json'"


def test_a_changed_default_shows_as_that_change_on_each_server_it_reaches(tmp_path: Path) -> None:
    def load(max_restarts: int) -> mv.SupervisorSpec:
        path = tmp_path / "mcp.toml"
        path.write_text(
            f"[mcpvisor.defaults.restart]\nmax_restarts = {max_restarts}\n\n"
            '[mcpServers.a]\ncommand = "srv"\n\n'
            '[mcpServers.b]\ncommand = "srv"\n[mcpServers.b.restart]\nmax_restarts = 1\n'
        )
        return mv.load_config(path)

    report = plan_reconfigure(load(5), load(7))
    assert report.updated == ("a",) and report.unchanged == ("b",)
    assert dict(report.fields) == {"a": ("restart.max_restarts",)}


async def _sample_a(ctx: object, params: object) -> object:
    raise NotImplementedError


async def _sample_b(ctx: object, params: object) -> object:
    raise NotImplementedError


def test_handlers_are_compared_as_each_server_answers_with_them() -> None:
    # A handler is compared by identity (attrs equality ignores callables); the supervisor's
    # handlers reach every server that does not set its own; and only a change of what they
    # advertise needs a new session.
    a = mv.ClientHandlers(sampling=_sample_a)
    old = mv.SupervisorSpec([stdio("own", handlers=a), stdio("inherits")], handlers=a)
    same = mv.SupervisorSpec([stdio("own", handlers=a), stdio("inherits")], handlers=a)
    assert not plan_reconfigure(old, same).changed

    swapped = mv.SupervisorSpec(
        [stdio("own", handlers=a), stdio("inherits")],
        handlers=mv.ClientHandlers(sampling=_sample_b),
    )
    report = plan_reconfigure(old, swapped)
    assert (report.updated, report.unchanged) == (("inherits",), ("own",))
    assert report.fields["inherits"] == ("handlers",)

    disabled = mv.ClientHandlers(disabled={"sampling"})
    narrowed = mv.SupervisorSpec([stdio("own", handlers=disabled), stdio("inherits")], handlers=a)
    report = plan_reconfigure(old, narrowed)
    assert report.restarted == ("own",)
    assert report.fields["own"] == ("handlers", "handlers.capabilities")

    level = mv.SupervisorSpec(
        [
            stdio("own", handlers=mv.ClientHandlers(sampling=_sample_a, log_level="error")),
            stdio("inherits"),
        ],
        handlers=a,
    )
    assert plan_reconfigure(old, level).updated == ("own",)
