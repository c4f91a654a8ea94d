"""The reload loop in-process: ``serve_reloads`` (what ``serve`` reuses) on SIGHUP, a broken
file kept out, coalesced triggers, and how the reload events read in the live view."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import pytest
import trio

import mcpvisor as mv
from mcpvisor.cli._logging import redact
from mcpvisor.cli._reload import Reloader, serve_reloads
from mcpvisor.cli._view import event_plain
from tests.conftest import RAW_SERVER


def write(path: Path, *names: str) -> None:
    servers = {n: {"command": sys.executable, "args": [str(RAW_SERVER)]} for n in names}
    path.write_text(json.dumps({"mcpServers": servers}))


async def next_reload(events: mv.Subscription) -> mv.LifecycleEvent:
    async for event in events:
        if isinstance(event, mv.LifecycleEvent) and event.kind == "reload":
            return event
    raise AssertionError("the event stream ended")


async def test_serve_reloads_on_sighup_and_keeps_a_broken_file_out(tmp_path: Path) -> None:
    config = tmp_path / "mcp.json"
    write(config, "one")
    with trio.fail_after(90):
        async with (
            mv.open_supervisor(mv.load_config(config)) as client,
            client.subscribe() as events,
            trio.open_nursery() as nursery,
        ):
            await nursery.start(serve_reloads, client, config)
            pid = client.status().servers["one"].pid
            write(config, "one", "two")
            os.kill(os.getpid(), signal.SIGHUP)
            applied = await next_reload(events)
            assert (applied.reason, applied.cause) == ("applied", "added two")
            assert list(client.status().servers) == ["one", "two"]

            config.write_text('{"mcpServers": [')
            os.kill(os.getpid(), signal.SIGHUP)
            rejected = await next_reload(events)
            assert rejected.reason == "rejected"
            assert rejected.cause and "\n" not in rejected.cause
            line = event_plain(rejected, 0.0)
            assert "reload" in line and "rejected" in line and rejected.cause[:20] in line
            status = client.status()
            assert list(status.servers) == ["one", "two"] and status.servers["one"].pid == pid
            nursery.cancel_scope.cancel()


async def test_triggers_during_a_reload_coalesce_and_wait_for_serve(tmp_path: Path) -> None:
    config = tmp_path / "mcp.json"
    write(config, "one")
    loads: list[int] = []

    def load() -> mv.SupervisorSpec:
        loads.append(1)
        return mv.load_config(config)

    reloader = Reloader(config, load=load)
    for _ in range(5):  # before anything serves them: one reload, once serving starts
        await reloader.request()
    with trio.fail_after(90):
        async with (
            mv.open_supervisor(mv.load_config(config)) as client,
            client.subscribe() as events,
            trio.open_nursery() as nursery,
        ):
            await nursery.start(reloader.serve, client)
            assert (await next_reload(events)).cause == "no changes"
            assert loads == [1]
            assert reloader._receive.statistics().current_buffer_used == 0  # nothing more due
            nursery.cancel_scope.cancel()


async def test_a_reloaded_configs_secrets_are_masked_in_cli_log_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "reload-sentinel-8d1f2c"
    monkeypatch.setenv("RELOAD_SECRET", secret)
    config = tmp_path / "mcp.json"
    write(config, "one")
    reloader = Reloader(config)
    with trio.fail_after(90):
        async with (
            mv.open_supervisor(mv.load_config(config)) as client,
            client.subscribe() as events,
            trio.open_nursery() as nursery,
        ):
            await nursery.start(reloader.serve, client)
            servers = {
                "one": {"command": sys.executable, "args": [str(RAW_SERVER)]},
                "two": {
                    "command": sys.executable,
                    "args": [str(RAW_SERVER)],
                    "env": {"TOKEN": "${RELOAD_SECRET}"},
                },
            }
            config.write_text(json.dumps({"mcpServers": servers}))
            await reloader.request()
            applied = await next_reload(events)
            assert applied.cause == "added two" and secret not in repr(client.status())
            assert secret not in redact(f"a log line that quotes {secret} by mistake")
            nursery.cancel_scope.cancel()
