"""Where the Trio run lives: its own thread (the default) or a guest run on the host loop.

A thread keeps supervision live while the host loop is blocked (a CPU-bound handler, a
synchronous library call): crashes are still noticed and servers restarted. A guest run
shares the host's thread, so it stalls whenever the loop does; it suits hosts that want no
extra thread. Either way the asyncio side learns the run's outcome from :attr:`finished`.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, Literal, Protocol

import outcome
import trio

from mcpvisor.aio._portal import deliver

Runner = Literal["thread", "guest"]
RUNNERS: tuple[Runner, ...] = ("thread", "guest")


class TrioRun(Protocol):
    """A started Trio run; ``finished`` resolves to its outcome once it is completely over."""

    finished: asyncio.Future[outcome.Outcome[Any]]

    def start(self, main: Callable[[], Awaitable[object]]) -> None: ...

    def join(self) -> None:
        """Block until the run is over (a thread is joined); the last resort on exit."""


class ThreadRun:
    """``trio.run(main)`` in a thread named ``mcpvisor-trio``.

    Not a daemon: if the host is torn away before the run finished its teardown, the
    interpreter still waits for it at exit instead of orphaning servers mid-shutdown.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.finished: asyncio.Future[outcome.Outcome[Any]] = loop.create_future()
        self._thread: threading.Thread | None = None

    def start(self, main: Callable[[], Awaitable[object]]) -> None:
        def target() -> None:
            result = outcome.capture(trio.run, main)
            deliver(self._loop, self.finished, result)

        self._thread = threading.Thread(target=target, name="mcpvisor-trio", daemon=False)
        self._thread.start()

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join()


class GuestRun:
    """``trio.lowlevel.start_guest_run(main)`` on the running asyncio loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.finished: asyncio.Future[outcome.Outcome[Any]] = loop.create_future()

    def start(self, main: Callable[[], Awaitable[object]]) -> None:
        def done(result: outcome.Outcome[Any]) -> None:
            deliver(self._loop, self.finished, result)

        with _no_trio_sigint_handler():
            trio.lowlevel.start_guest_run(
                main,
                run_sync_soon_threadsafe=self._loop.call_soon_threadsafe,
                run_sync_soon_not_threadsafe=self._loop.call_soon,
                done_callback=done,
                host_uses_signal_set_wakeup_fd=True,
            )

    def join(self) -> None:
        """A guest run cannot finish while the host loop is not running: nothing to do."""


@contextmanager
def _no_trio_sigint_handler() -> Iterator[None]:
    """Keep Trio from installing its SIGINT handler, which it does only over the default one.

    The library installs no signal handlers: Ctrl-C stays the host's. Hosts such as
    ``asyncio.run`` and uvicorn have their own handler in place, and then this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return
    signal.signal(signal.SIGINT, _host_default)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _host_default(signum: int, frame: object) -> None:  # pragma: no cover - never delivered
    raise KeyboardInterrupt


def make_run(runner: Runner, loop: asyncio.AbstractEventLoop) -> TrioRun:
    """The run for ``runner``."""
    return ThreadRun(loop) if runner == "thread" else GuestRun(loop)
