"""Reloading a config file under a running supervisor: on SIGHUP, as daemons do, and on change.

:func:`serve_reloads` is the loop ``run`` (and ``serve``) start next to the supervisor. Every
trigger re-reads the file and applies it with :meth:`SupervisorClient.reload`: only what
changed is touched, and a file that does not load or validate keeps the running
configuration (the ``"reload"`` event, reason ``rejected``, says why, in the live view and the
JSON stream alike). Triggers that arrive while a reload runs coalesce into one more reload.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

import anyio
import trio

import mcpvisor as mv

WATCH_DEBOUNCE_MS = 300
"""Changes closer together than this are one reload: an editor's save is several writes."""

_WATCH_TICK_MS = 1000
"""How often the watcher thread comes up for air: it reports readiness on the first tick."""


async def serve_reloads(
    client: mv.SupervisorClient,
    config: str | Path,
    *,
    watch: bool = False,
    load: Callable[[], mv.SupervisorSpec] | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Reload ``client`` from ``config`` on every SIGHUP and, with ``watch``, on every change.

    ``await nursery.start(serve_reloads, client, path, watch=True)`` in the nursery that
    holds the supervisor: it returns once SIGHUP is caught and the watcher is listening, and
    runs until cancelled. ``load`` (default: :func:`mcpvisor.load_config` of ``config``)
    builds the new spec; a one-shot command's adjustments go there. Must run in the main
    thread, since it installs a signal handler; only the CLI does that.
    """
    path = Path(config)
    loader = load or (lambda: mv.load_config(path))
    send, receive = trio.open_memory_channel[str](1)

    def trigger(why: str) -> None:
        # When a reload is already due, it will read the latest file anyway.
        with suppress(trio.WouldBlock):
            send.send_nowait(why)

    with trio.open_signal_receiver(signal.SIGHUP) as signals:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_on_signals, signals, trigger)
            if watch:
                await nursery.start(_watch_file, path, trigger)
            task_status.started()
            async for _why in receive:
                try:
                    await client.reload(loader)
                except (mv.ConfigError, OSError):
                    pass  # published as a rejected reload event; the old config runs on
                except mv.ServerUnavailableError:
                    return  # the supervisor is shutting down


def _absolute(path: str | Path) -> str:
    """``path`` made absolute as watchfiles reports it (no symlinks resolved, no I/O)."""
    return os.path.abspath(path)


async def _on_signals(signals: Any, trigger: Callable[[str], None]) -> None:
    async for _ in signals:
        trigger("SIGHUP")


async def _watch_file(
    path: Path, trigger: Callable[[str], None], *, task_status: trio.TaskStatus[None]
) -> None:
    """Call ``trigger`` whenever ``path`` is written, replaced or re-created.

    Watches the directory, since editors save by writing a new file and renaming it over the
    old one, which a watch on the file itself would lose.
    """
    from watchfiles import awatch

    target = _absolute(path)
    stop = anyio.Event()

    def ours(_change: object, changed: str) -> bool:
        return _absolute(changed) == target

    async def stop_on_exit() -> None:
        # The watcher thread cannot be cancelled; it polls this event and ends on it.
        try:
            await trio.sleep_forever()
        finally:
            stop.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(stop_on_exit)
        started = False
        async for changes in awatch(
            os.path.dirname(target),
            watch_filter=ours,
            debounce=WATCH_DEBOUNCE_MS,
            stop_event=stop,
            rust_timeout=_WATCH_TICK_MS,
            yield_on_timeout=True,
            recursive=False,
        ):
            if not started:
                started = True
                task_status.started()
            if changes:
                trigger("changed")
        nursery.cancel_scope.cancel()
