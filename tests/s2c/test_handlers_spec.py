"""ClientHandlers as a spec value: validation, per-server override, config files, log bounds."""

from __future__ import annotations

import logging

import mcp_types as types
import pytest
import trio
import trio.testing

import mcpvisor as mv
from mcpvisor.specs.config import dump_config, load_config
from mcpvisor.supervisor.answering import effective_handlers
from mcpvisor.workers.callbacks import LOG_BURST, LOG_RATE, ServerSide


async def _sampling(ctx: mv.HandlerContext, params: object) -> types.CreateMessageResult:
    raise NotImplementedError


async def _other(ctx: mv.HandlerContext, params: object) -> types.CreateMessageResult:
    raise NotImplementedError


def test_a_server_override_wins_field_by_field_and_disabled_removes() -> None:
    base = mv.ClientHandlers(sampling=_sampling, roots=["file:///base"], log_level="info")
    server = mv.StdioSpec(
        name="a", command="x", handlers=mv.ClientHandlers(sampling=_other, disabled={"roots"})
    )
    plain = mv.StdioSpec(name="b", command="x")
    spec = mv.SupervisorSpec([server, plain], handlers=base)
    a, b = effective_handlers(server, spec), effective_handlers(plain, spec)
    assert a.sampling is _other and a.roots is None and a.log_level == "info"
    assert a.advertised == {"sampling"}
    assert b.sampling is _sampling and b.advertised == {"sampling", "roots"}
    assert isinstance(b.roots, tuple) and str(b.roots[0].uri) == "file:///base"


async def _async_on_log(record: object) -> None:
    """Called synchronously, it would never run: refused."""


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"sampling": "not callable"}, "handlers.sampling"),
        ({"roots": ["http://x"]}, "handlers.roots"),
        ({"roots": "file:///a"}, "handlers.roots"),
        ({"log_level": "loud"}, "handlers.log_level"),
        ({"timeout": 0}, "handlers.timeout"),
        ({"disabled": {"nope"}}, "handlers.disabled"),
        ({"logging": _async_on_log}, "handlers.logging"),
    ],
)
def test_bad_handlers_name_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(mv.ConfigError) as caught:
        mv.ClientHandlers(**kwargs)  # type: ignore[arg-type]
    assert caught.value.paths == (field,)


def test_a_server_spec_refuses_a_non_handlers_value() -> None:
    with pytest.raises(mv.ConfigError) as caught:
        mv.StdioSpec(name="a", command="x", handlers={"sampling": None})  # type: ignore[arg-type]
    assert "a.handlers" in caught.value.paths


def test_config_files_switch_off_and_give_static_roots(tmp_path: object) -> None:
    data = {
        "mcpServers": {
            "files": {"command": "npx", "roots": ["file:///data"], "sampling": False},
            "plain": {"command": "npx", "elicitation": True, "log_level": "warning"},
            "none": {"command": "npx"},
        }
    }
    spec = load_config(data)
    files, plain, none = spec.servers
    assert files.handlers is not None and plain.handlers is not None
    assert files.handlers.disabled == {"sampling"}
    assert [str(r.uri) for r in files.handlers.roots] == ["file:///data"]  # type: ignore[union-attr]
    assert plain.handlers.disabled == frozenset() and plain.handlers.log_level == "warning"
    assert none.handlers is None
    assert load_config(dump_config(spec)) == spec


@pytest.mark.parametrize(
    ("entry", "path"),
    [
        ({"roots": ["/data"]}, "mcpServers.a.roots"),
        ({"roots": "file:///data"}, "mcpServers.a.roots"),
        ({"sampling": "yes"}, "mcpServers.a.sampling"),
        ({"log_level": "chatty"}, "mcpServers.a.log_level"),
    ],
)
def test_bad_config_handlers_are_reported_at_their_path(
    entry: dict[str, object], path: str
) -> None:
    with pytest.raises(mv.ConfigError) as caught:
        load_config({"mcpServers": {"a": {"command": "npx", **entry}}})
    assert path in caught.value.paths


async def test_a_log_flood_is_rate_limited_in_virtual_time(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[mv.ServerLog] = []
    side = ServerSide("s", mv.ClientHandlers(logging=seen.append))
    session = side.session("s")
    params = types.LoggingMessageNotificationParams(level="info", data="x")
    with caplog.at_level(logging.INFO, logger="mcpvisor"):
        for _ in range(LOG_BURST * 3):
            session.receive_log(params)
        assert len(seen) == LOG_BURST
        await trio.sleep(1.0)
        for _ in range(LOG_BURST * 3):
            session.receive_log(params)
    assert len(seen) == LOG_BURST + int(LOG_RATE)
    dropped = [r.getMessage() for r in caplog.records if "server.log_dropped" in r.getMessage()]
    assert len(dropped) == 1 and f"count={LOG_BURST * 2}" in dropped[0]


async def test_records_below_the_minimum_level_are_dropped_and_a_raising_callback_ignored() -> None:
    seen: list[str] = []

    def callback(record: mv.ServerLog) -> None:
        seen.append(record.level)
        raise RuntimeError("host bug")

    session = ServerSide("s", mv.ClientHandlers(logging=callback, log_level="error")).session("s")
    for level in ("debug", "warning", "error", "emergency"):
        session.receive_log(types.LoggingMessageNotificationParams(level=level, data="x"))  # type: ignore[arg-type]
    assert seen == ["error", "emergency"]
