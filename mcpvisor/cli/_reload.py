"""Reloading a config file under a running supervisor: on SIGHUP, as daemons do, and on change.

:class:`Reloader` is what ``run`` starts next to the supervisor (its SIGHUP goes through the
command's signal plan); :func:`serve_reloads` is the same with a SIGHUP handler of its own,
for ``serve``. Every trigger re-reads the file and applies it with
:meth:`SupervisorClient.reload`: only what changed is touched, and a file that does not load
or validate keeps the running configuration (the ``"reload"`` event, reason ``rejected``,
says why, in the live view and the JSON stream alike). Triggers that arrive while a reload
runs coalesce into one more reload.
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
from mcpvisor.cli._logging import protect

WATCH_DEBOUNCE_MS = 300
"""Changes closer together than this are one reload: an editor's save is several writes."""

_WATCH_TICK_MS = 1000
"""How often the watcher thread comes up for air: it reports readiness on the first tick."""


class Reloader:
    """Reloads the config file ``config`` into a running supervisor, when asked and on change.

    :meth:`request` asks for a reload and returns at once, so a signal handler can call it
    (``run`` maps SIGHUP to it); :meth:`serve` carries the reloads out, one at a time, for a
    client once it exists, and with ``watch`` also watches the file. Requests made before
    :meth:`serve` starts wait for it; requests made during a reload coalesce into one more.
    ``load`` (default: :func:`mcpvisor.load_config` of ``config``, whose secrets the CLI's
    log lines then mask too) builds the new spec.
    """

    def __init__(
        self,
        config: str | Path,
        *,
        watch: bool = False,
        load: Callable[[], mv.SupervisorSpec] | None = None,
    ) -> None:
        self.config = Path(config)
        self.watch = watch
        self._load = load or (lambda: _load_protected(self.config))
        self._send, self._receive = trio.open_memory_channel[str](1)

    def trigger(self, why: str) -> None:
        """Ask for a reload (``why`` is for debugging); never blocks."""
        # When a reload is already due, it will read the latest file anyway.
        with suppress(trio.WouldBlock):
            self._send.send_nowait(why)

    async def request(self) -> None:
        """:meth:`trigger` as a :data:`SignalPlan` action: returns at once."""
        self.trigger("SIGHUP")
        await trio.lowlevel.checkpoint()

    async def serve(
        self,
        client: mv.SupervisorClient,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Carry out reloads into ``client`` until cancelled or the supervisor closes.

        Reports ready once the file watcher (with ``watch``) is listening.
        """
        async with trio.open_nursery() as nursery:
            if self.watch:
                await nursery.start(_watch_file, self.config, self.trigger)
            task_status.started()
            async for _why in self._receive:
                try:
                    await client.reload(self._load)
                except (mv.ConfigError, OSError):
                    pass  # published as a rejected reload event; the old config runs on
                except mv.ServerUnavailableError:
                    break  # the supervisor is shutting down
            nursery.cancel_scope.cancel()


async def serve_reloads(
    client: mv.SupervisorClient,
    config: str | Path,
    *,
    watch: bool = False,
    load: Callable[[], mv.SupervisorSpec] | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Reload ``client`` from ``config`` on every SIGHUP and, with ``watch``, on every change.

    For a command without a :class:`Reloader` of its own (``serve``): ``await
    nursery.start(serve_reloads, client, path, watch=True)`` in the nursery that holds the
    supervisor returns once SIGHUP is caught and the watcher listens, and runs until
    cancelled. It installs a SIGHUP handler, so it must run in the main thread, and must not
    overlap another SIGHUP receiver (the latest one opened gets the signal).
    """
    reloader = Reloader(config, watch=watch, load=load)
    with trio.open_signal_receiver(signal.SIGHUP) as signals:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_on_signals, signals, reloader.trigger)
            await nursery.start(reloader.serve, client)
            task_status.started()


def _load_protected(path: Path) -> mv.SupervisorSpec:
    """The spec in ``path``, its secrets masked in every CLI log line from now on."""
    spec = mv.load_config(path)
    protect(spec)
    return spec


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
