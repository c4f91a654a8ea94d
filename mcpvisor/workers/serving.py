"""Serving one ready session: long-lived serving tasks, one verdict, nothing left pending.

Serving tasks pull envelopes from the worker's channel and perform each operation under the
caller's context variables, in a cancel scope each task reuses until a call is cancelled in
it. The first verdict that the session is over
(the link lost, the HTTP session gone, probes failed, the channel closed) wins: the owner hears
of a loss at once through ``on_lost``, queued envelopes fail as unsent, and calls in flight fail
too, except that a lost link first lets them collect answers the transport already read, and
tells the calls it failed only after the owner has heard of the loss.
"""

from __future__ import annotations

import contextvars
import math
from collections.abc import Callable
from typing import Any, TypeAlias

import trio
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_types import CONNECTION_CLOSED

from mcpvisor.specs import ServerSpec
from mcpvisor.workers.callbacks import ANSWERING, SessionCallbacks
from mcpvisor.workers.errors import RequestInterruptedError, RequestTimeoutError
from mcpvisor.workers.health import probe_loop
from mcpvisor.workers.link import Link
from mcpvisor.workers.refresh import CatalogKeeper
from mcpvisor.workers.remote import HttpStatusLog
from mcpvisor.workers.reports import ExitKind, Ready, WorkerExit, WorkerHooks
from mcpvisor.workers.requests import Envelope, Inbox

_ANSWER_GRACE = 1.0
"""After a link is lost, how long in-flight calls may take to collect answers already read.

The SDK fails every call still waiting with "connection closed" within a scheduler pass of
the read stream ending, and a call whose server waits on the host's handler is ended at once
(see :data:`~mcpvisor.workers.callbacks.ANSWERING`), so this bound is only reached if the
SDK breaks that promise.
"""

STOPPED = "stopped by its owner"
_HTTP_STAND_IN = "Server returned an error response"
"""The SDK's message for an HTTP error status with no JSON-RPC body."""


_Begun: TypeAlias = tuple[
    float,
    float,
    list[tuple[contextvars.ContextVar[Any], contextvars.Token[Any]]],
    contextvars.Token[list[int] | None],
]
"""What :meth:`Serving._begin` set up for one call (its start, its deadline, the caller's
context variables set and the handler-answering token), for its end to undo."""


def link_verdict(link: Link, redact: Callable[[str], str]) -> WorkerExit:
    """How a session whose link was lost ended: ``normal`` only for a stdio exit with code 0."""
    returncode = link.returncode
    kind: ExitKind = "normal" if link.kind == "exited" and returncode == 0 else "abnormal"
    return WorkerExit(kind, redact(link.cause or "the connection was lost"), returncode)


class Serving:
    """Serves a worker's channel on one session until a verdict ends it (see the module)."""

    __slots__ = (
        "deferred",
        "drain",
        "drained",
        "ended",
        "exit",
        "hooks",
        "http",
        "idle",
        "inflight",
        "link",
        "log",
        "name",
        "now",
        "nursery",
        "redact",
        "reported",
        "requests",
        "spec",
        "tasks",
    )

    def __init__(
        self,
        spec: ServerSpec,
        requests: Inbox[Envelope],
        hooks: WorkerHooks,
        *,
        name: str,
        redact: Callable[[str], str],
        log: Any,
        link: Link,
        http: HttpStatusLog | None,
    ) -> None:
        self.spec = spec
        self.requests = requests
        self.hooks = hooks
        self.name = name
        self.redact = redact
        self.log = log
        self.link = link
        self.http = http
        self.now = trio.lowlevel.current_clock().current_time
        """Trio's clock, read without the two calls ``trio.current_time`` adds."""
        self.exit: WorkerExit | None = None
        self.inflight: dict[Envelope, list[int]] = {}
        """Envelopes being served, each with how many of the host's handlers answer for it now
        (a dict: an idle worker's empty one costs a third of a set's)."""
        self.ended = trio.Event()
        self.drain = False
        self.drained: trio.Event | None = None
        """Set once a lost link's calls in flight have all collected their answers."""
        self.deferred: list[Envelope] = []
        """Calls in flight that a lost link failed, told so only once the owner has heard of
        the loss: a caller that reads the status on its error never sees the server ACTIVE."""
        self.reported = False
        self.nursery: trio.Nursery | None = None
        self.tasks = 0
        self.idle = 0

    # -- the end of a session -------------------------------------------------------------

    def conclude(self, exit: WorkerExit, *, report: bool = True) -> bool:
        """Record the verdict (the first wins) and, with ``report``, tell the owner of a loss."""
        if self.exit is not None:
            return False
        self.exit = exit
        if report:
            self._report_lost()
        return True

    def _report_lost(self) -> None:
        exit = self.exit
        if exit is None or self.reported:
            return
        self.reported = True
        if exit.kind != "stopped" and self.hooks.on_lost is not None:
            try:
                self.hooks.on_lost(exit.cause, exit.kind, self.link.server_gone())
            except Exception:
                self.log.exception("server.hook_failed", hook="on_lost")

    def _finish(self, exit: WorkerExit, *, drain: bool = False) -> None:
        """End serving with ``exit`` (the first call wins), failing pending requests now.

        ``drain`` (the link was lost): calls in flight are left to collect the answers the
        transport already read; the SDK fails the rest with "connection closed" within a
        scheduler pass or two. The owner hears of the loss once they have (see :meth:`serve`),
        so that an owner that fails outstanding requests on ``on_lost`` cannot beat an answer.
        """
        if not self.conclude(exit, report=not drain):
            return
        self.drain = drain
        self._fail_queued(exit.cause)
        if not drain:
            self._interrupt_inflight(exit.cause)
        else:
            # A call whose server waits on our handler awaits nothing the transport read.
            for envelope, answering in self.inflight.items():
                if answering[0]:
                    self.deferred.append(envelope)
                    envelope.cancel()
        if drain and self.inflight:
            self.drained = trio.Event()
        self.ended.set()

    def on_link_lost(self, link: Link) -> None:
        """The link's verdict, reported the moment the transport declares it."""
        self._finish(link_verdict(link, self.redact), drain=True)

    def finish_pending(self, cause: str) -> None:
        """Fail every request in flight and every envelope still queued with ``cause``."""
        self._fail_deferred()
        self._interrupt_inflight(cause)
        self._fail_queued(cause)

    def _drain_done(self) -> None:
        """The last call in flight on a lost link is answered: the owner hears of the loss,
        then the calls the link failed are told."""
        self._report_lost()
        self._fail_deferred()
        if self.drained is not None:
            self.drained.set()

    def _fail_deferred(self) -> None:
        deferred, self.deferred = self.deferred, []
        if deferred:
            assert self.exit is not None
            for envelope in deferred:
                self._interrupt(envelope, self.exit.cause)

    def _interrupt_inflight(self, cause: str) -> None:
        for envelope in list(self.inflight):
            self._interrupt(envelope, cause)
        self.inflight.clear()

    def _fail_queued(self, cause: str) -> None:
        while True:
            try:
                envelope = self.requests.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
            self._interrupt(envelope, cause, sent=False)

    def _interrupt(self, envelope: Envelope, cause: str, *, sent: bool = True) -> None:
        error = RequestInterruptedError(self.name, envelope.operation.name, cause, sent=sent)
        envelope.reply.set_error(error)

    # -- serving --------------------------------------------------------------------------

    async def serve(
        self, client: Client, ready: Ready, keeper: CatalogKeeper, s2c: SessionCallbacks
    ) -> WorkerExit:
        """Serve until a verdict, then fail whatever is pending and return the verdict.

        The session's other tasks (refetching the catalog, following the host's
        server-to-client state, probing) run in the same nursery and end with it."""
        t = self.spec.timeouts
        async with trio.open_nursery() as nursery:
            self.nursery = nursery
            keeper.start(nursery, client)
            s2c.start(nursery, client, ready, t.request)
            if t.probe_interval is not None:
                nursery.start_soon(self._probes, client, ready)
            if ready.modern and not keeper.followed:
                nursery.start_soon(keeper.listen, client, t.request)
            self._add_serving_task(client, ready)
            await self.ended.wait()
            if self.drain:
                if self.drained is not None:
                    with trio.move_on_after(_ANSWER_GRACE):
                        await self.drained.wait()
                # Still before teardown: the transport's cleanup starts when serving ends.
                self._report_lost()
            assert self.exit is not None
            self.finish_pending(self.exit.cause)
            nursery.cancel_scope.cancel()
        assert self.exit is not None
        return self.exit

    def _add_serving_task(self, client: Client, ready: Ready) -> None:
        assert self.nursery is not None
        self.tasks += 1
        self.nursery.start_soon(self._serving_task, client, ready)

    async def _serving_task(self, client: Client, ready: Ready) -> None:
        """Serve envelopes one after another until the session ends.

        Tasks are added only when every existing one is busy, up to ``max_concurrency``, and
        live as long as the session: no task is spawned per request, and an idle worker
        holds one. One cancel scope serves call after call; only a call that was cancelled
        in it (see :meth:`Envelope.cancel`) costs the task a new one.
        """
        requests = self.requests
        while self.exit is None:
            with trio.CancelScope() as scope:
                spent = False
                # A scope cancelled as its call ended must not cancel the next call.
                while self.exit is None and not spent:
                    self.idle += 1
                    try:
                        # A queued envelope is taken without yielding; only an empty queue
                        # blocks. Blocking inside the except clause keeps the WouldBlock
                        # alive while the worker idles (~0.5 KiB), yet blocking after the
                        # clause measured 0.77-0.82 of raw stdio throughput in bench 3
                        # against 1.19-1.44 this way (two runs each).
                        try:
                            envelope = requests.receive_nowait()
                        except trio.WouldBlock:
                            envelope = await requests.receive()
                    except (trio.EndOfChannel, trio.ClosedResourceError):
                        self._finish(WorkerExit("stopped", STOPPED))
                        return
                    finally:
                        self.idle -= 1
                    if self.exit is not None:
                        self._interrupt(envelope, self.exit.cause, sent=False)
                        return
                    if self.idle == 0 and self.tasks < self.spec.max_concurrency:
                        self._add_serving_task(client, ready)
                    begun = self._begin(envelope, scope)
                    if begun is None:
                        del envelope
                        continue
                    # The call is awaited here, not in a coroutine of its own: each frame on
                    # the stack is resumed at every step the SDK's call takes.
                    reply = envelope.reply
                    try:
                        result = await envelope.operation.perform(client, ready)
                    except MCPError as error:
                        self._on_mcp_error(envelope, error)
                    except Exception as error:
                        if envelope not in self.deferred:
                            reply.set_error(error)
                    else:
                        reply.set_result(result)
                        del result
                    finally:
                        spent = self._end(envelope, begun, scope)
                        # This task may idle long before its next call, and a cancelled call
                        # leaves through here: what it served (the result or error in the
                        # reply, the caller's context) goes with the caller.
                        del envelope, reply, begun

    def _begin(self, envelope: Envelope, scope: trio.CancelScope) -> _Begun | None:
        """Prepare to send ``envelope`` in ``scope``, or None if it is not to be sent."""
        if envelope.reply.done:
            return None
        if envelope.cancelled:  # the caller gave up, or its deadline passed, while queued
            self._interrupt(envelope, "cancelled by the caller before it was sent", sent=False)
            return None
        start = self.now()
        deadline = envelope.deadline
        if deadline == math.inf:
            # Nobody keeps this call's time (see Envelope): the worker bounds it itself.
            deadline = scope.deadline = start + self.spec.timeouts.request
        envelope.serving = scope
        answering = self.inflight[envelope] = [0]
        tokens: list[tuple[contextvars.ContextVar[Any], contextvars.Token[Any]]] = []
        if envelope.context is not None:
            for var, value in envelope.context.items():
                tokens.append((var, var.set(value)))
        # A plain tuple: a named one costs a call to build.
        return (start, deadline, tokens, ANSWERING.set(answering))

    def _end(self, envelope: Envelope, begun: _Begun, scope: trio.CancelScope) -> bool:
        """Undo what :meth:`_begin` set up; whether ``scope`` was cancelled (it is spent)."""
        start, deadline, tokens, asking = begun
        envelope.serving = None
        if envelope.deadline == math.inf:
            scope.deadline = math.inf
            spent = scope.cancel_called
        else:
            # Only cancelling this envelope cancels the scope (read without trio's clock).
            spent = envelope.cancelled
        ANSWERING.reset(asking)
        for var, token in reversed(tokens):
            var.reset(token)
        reply = envelope.reply
        if not reply.done and spent and envelope not in self.deferred:
            # Cancelled in this task's scope: by its caller, or at its deadline.
            if self.now() >= deadline:
                reply.set_error(
                    RequestTimeoutError(self.name, envelope.operation.name, deadline - start)
                )
            else:
                self._interrupt(envelope, "cancelled by the caller")
        # Unanswered means the worker itself is ending: its cleanup answers the reply.
        if reply.done or envelope in self.deferred:
            self.inflight.pop(envelope, None)
            if self.drained is not None and not self.inflight:
                self._drain_done()
        return spent

    def _on_mcp_error(self, envelope: Envelope, error: MCPError) -> None:
        if self.http is not None and self.http.says_session_gone(error):
            self._session_gone(error)
        elif error.code == CONNECTION_CLOSED:
            # The link's own verdict (with the exit status) is usually in by now.
            if self.link.lost:
                self._finish(link_verdict(self.link, self.redact), drain=True)
            else:
                cause = f"the connection closed ({self.server_text(error)})"
                self._finish(WorkerExit("abnormal", cause))
        else:
            envelope.reply.set_error(self._for_host(error))
            return
        # The session is over (perhaps already being stopped): the caller learns that, not
        # the transport's own error; on a lost link, once the owner has heard of it.
        assert self.exit is not None
        if self.drain and not self.reported:
            self.deferred.append(envelope)
        else:
            self._interrupt(envelope, self.exit.cause)

    def _for_host(self, error: MCPError) -> MCPError:
        """The server's error as the host may see it: redacted, with the HTTP status if any."""
        message = error.error.message
        text = self.redact(message)
        if message == _HTTP_STAND_IN and self.http is not None and self.http.last is not None:
            text = f"{message} ({self.http.last})"
        data = error.error.data
        if isinstance(data, str):
            data = self.redact(data)
        if text == message and data is error.error.data:
            return error
        return MCPError(code=error.code, message=text, data=data)

    def _session_gone(self, error: MCPError) -> None:
        said = self.server_text(error)
        if self.http is not None and self.http.session_gone is not None:
            said = self.redact(self.http.session_gone)[:500]
        if self.http is not None and self.http.last is not None:
            said = f"{self.http.last}: {said}"
        self._finish(
            WorkerExit(
                "abnormal",
                f"the server no longer knows this session ({said}); it has probably restarted",
            )
        )

    # -- health --------------------------------------------------------------------------------

    async def _probes(self, client: Client, ready: Ready) -> None:
        await probe_loop(
            client,
            ready,
            self.spec.timeouts,
            http=self.http,
            on_failed=lambda cause: self._finish(WorkerExit("abnormal", cause)),
            on_session_gone=self._session_gone,
            log=self.log,
            redact=self.redact,
        )

    def server_text(self, error: MCPError) -> str:
        """A server's error message, safe to log."""
        return self.redact(error.error.message)[:500]
