"""The imperative shell: carries out the lifecycle core's decisions with Trio.

One :class:`Supervisor` owns a nursery. Each server gets a worker task in it that owns the
server's session; the supervisor never touches a session itself. Every input (a worker became
ready, a worker lost its server, a timer fired, a host command) is fed to the pure
:class:`~mcpvisor.supervisor.lifecycle.Lifecycle`, and the commands it returns are carried out
here, synchronously and without awaiting, so no decision is ever made in this module.

The supervisor is the only implementation of
:class:`~mcpvisor.supervisor.interface.RuntimeInterface`, the seam the public handle uses.
"""

from __future__ import annotations

import contextvars
import math
import random
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager, suppress
from typing import Any

import attrs
import trio
from mcp_types import CallToolResult

from mcpvisor.specs import (
    ConfigError,
    InProcessSpec,
    Problem,
    ServerSpec,
    SseSpec,
    StdioSpec,
    SupervisorSpec,
)
from mcpvisor.specs._logging import library_logger
from mcpvisor.specs.errors import UsageError
from mcpvisor.specs.handlers import ClientHandlers
from mcpvisor.supervisor.answering import Answering
from mcpvisor.supervisor.client import SupervisorClient
from mcpvisor.supervisor.errors import (
    RequiredServerError,
    ServerUnavailableError,
    UnknownServerError,
    UnknownToolError,
)
from mcpvisor.supervisor.events import EventBus, Subscription, check_buffer
from mcpvisor.supervisor.hooks import Hooks, HookSet, RequestCall, RequestOutcome
from mcpvisor.supervisor.interface import Control, Snapshot
from mcpvisor.supervisor.lifecycle import (
    Add,
    CancelRestart,
    Command,
    CommandRefusedError,
    Decision,
    Drop,
    Escalate,
    Exited,
    Forget,
    IdleTimeout,
    Input,
    Lifecycle,
    LifecycleEvent,
    Member,
    Remove,
    RestartNow,
    Revive,
    ScheduleRestart,
    ServerState,
    Started,
    StartFailed,
    StartServer,
    Stop,
    StopServer,
    TimerFired,
    Wake,
)
from mcpvisor.supervisor.overdue import DeadlineWatch
from mcpvisor.supervisor.reconfigure import (
    ReconfigureReport,
    core_input,
    plan_reconfigure,
    reload_event,
)
from mcpvisor.supervisor.status import ServerStatus, SupervisorStatus
from mcpvisor.workers import (
    Envelope,
    Ready,
    Reply,
    RequestInterruptedError,
    RequestTimeoutError,
    StartError,
    WorkerHooks,
    run_worker,
)
from mcpvisor.workers.catalog import CATALOG_PARTS, EMPTY_CATALOG, Catalog, CatalogPart
from mcpvisor.workers.operations import OPERATIONS, Operation
from mcpvisor.workers.requests import Mailbox

log = library_logger()

_CONTROLS: dict[Control, Callable[[str, float], Input]] = {
    "restart": RestartNow,
    "stop": Stop,
    "drop": Drop,
    "revive": Revive,
}

_CHANGE_KINDS: dict[CatalogPart, str] = {
    "tools": "tools_changed",
    "resources": "resources_changed",
    "resource_templates": "resources_changed",
    "prompts": "prompts_changed",
}
"""The event a refetched catalog part is announced with; templates travel with resources."""

_STOP_WORDS = {
    "restart": "restarted",
    "group_restart": "restarted with its group",
    "dropped": "dropped",
    "intensity": "dropped",
    "idle": "stopped after idling",
    "reconfigured": "restarted with its new spec",
}
"""How a request interrupted by a host command (or a sibling's restart) learns why."""

_ALL_PARTS: frozenset[CatalogPart] = frozenset(CATALOG_PARTS)


def transport_of(spec: ServerSpec) -> str:
    """A short name for how ``spec`` is reached: stdio, http, sse or inprocess."""
    if isinstance(spec, StdioSpec):
        return "stdio"
    if isinstance(spec, SseSpec):
        return "sse"
    if isinstance(spec, InProcessSpec):
        return "inprocess"
    return "http"


def check_timeout(timeout: object, server: str | None = None) -> float | None:
    """``timeout`` if it is None or a positive, finite number of seconds; else UsageError."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise UsageError(
            "timeout", f"must be a number of seconds, not {type(timeout).__name__}", server=server
        )
    if not math.isfinite(timeout) or timeout <= 0:
        raise UsageError("timeout", "must be a positive, finite number of seconds", server=server)
    return float(timeout)


def _set_event() -> trio.Event:
    """An event already set: a slot that never ran a worker has none to wait for."""
    event = trio.Event()
    event.set()
    return event


@attrs.define(eq=False)
class _Slot:
    """The runtime's bookkeeping for one server: its current worker and its catalog.

    ``changed`` is set and replaced on every state change, so waiters re-check the state; it
    exists only while someone waits on it.
    ``outstanding`` holds every envelope a caller has handed (or is handing) to the current
    worker and not yet got an answer for, so the runtime can fail them all the moment it
    detaches that worker, without waiting for the worker's teardown.
    """

    name: str
    spec: ServerSpec
    transport: str
    isolated_of: str | None = None
    generation: int = 0
    send: Mailbox[Envelope] | None = None
    queue: Mailbox[Envelope] | None = None
    scope: trio.CancelScope | None = None
    worker_done: trio.Event = attrs.Factory(_set_event)
    lost: bool = False
    """The current worker's session was lost and its server is gone (a stdio server's
    process and process group, see ``Link.server_gone``; a remote one never ran here): the
    next start need not wait for ``worker_done``."""
    worker_shutdown: float = 0.0
    """``timeouts.shutdown`` of the spec the current worker runs: it bounds that worker's
    teardown even after a reload has replaced ``spec``."""
    worker_until: float = -math.inf
    """Until when the current worker waits for the one before it: stopped while it waits,
    it is done no later than that, so its own replacement waits at least as long."""
    ready: Ready | None = None
    _changed: trio.Event | None = None
    timer: trio.CancelScope | None = None
    catalog: Catalog = EMPTY_CATALOG
    first_attempt_done: bool = False
    removed: bool = False
    outstanding: dict[Envelope, None] = attrs.Factory(dict)
    """The envelopes, in a dict: an idle slot's empty one costs a third of a set's."""
    last_used: float = -math.inf
    pid: int | None = None

    @property
    def changed(self) -> trio.Event:
        if self._changed is None:
            self._changed = trio.Event()
        return self._changed

    def notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None


class _Report:
    """What one worker tells the runtime, tagged with its server and generation: the
    ``task_status`` it reports readiness through, and its catalog and loss hooks (bound
    methods of one small object rather than two closures per worker)."""

    __slots__ = ("_generation", "_name", "_supervisor")

    def __init__(self, supervisor: Supervisor, name: str, generation: int) -> None:
        self._supervisor = supervisor
        self._name = name
        self._generation = generation

    def started(self, value: Ready | None = None) -> None:
        assert value is not None
        self._supervisor._on_ready(self._name, self._generation, value)

    def on_catalog(self, catalog: Catalog, parts: frozenset[CatalogPart]) -> None:
        self._supervisor._on_catalog(self._name, self._generation, catalog, parts)

    def on_lost(self, cause: str, kind: str, gone: bool) -> None:
        self._supervisor._on_lost(self._name, self._generation, cause, kind, gone)


def _outcome(error: BaseException | None) -> RequestOutcome:
    if error is None:
        return "ok"
    if isinstance(error, UsageError | UnknownToolError):
        return "usage"
    if isinstance(error, RequestTimeoutError):
        return "timeout"
    if isinstance(error, RequestInterruptedError):
        return "interrupted"
    if isinstance(error, ServerUnavailableError | UnknownServerError):
        return "unavailable"
    if isinstance(error, trio.Cancelled):
        return "cancelled"
    return "error"


class Supervisor:
    """Supervises the servers of a :class:`SupervisorSpec` inside a nursery the host owns.

    ``client = await nursery.start(Supervisor(spec).run)`` returns a
    :class:`~mcpvisor.SupervisorClient` once startup is done (see :func:`open_supervisor`).
    ``hooks`` is a :class:`~mcpvisor.Hooks` or a sequence of them, called at the points their
    docstrings name. ``rng`` supplies backoff jitter; pass a seeded ``random.Random`` for
    repeatable runs.

    Workers, timers, idle watches and restarts run in the context (``contextvars``) that was
    current when :meth:`run` began, whichever caller's request woke them; each request is
    served in its own caller's context.
    """

    def __init__(
        self,
        spec: SupervisorSpec,
        *,
        hooks: Hooks | Iterable[Hooks] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.spec = spec
        self._rng = rng or random.Random()
        self._hooks = HookSet(hooks)
        self._request_hooks = bool(
            self._hooks.request_started
            or self._hooks.request_attempt
            or self._hooks.request_finished
        )
        self._life: Lifecycle | None = None
        self._slots: dict[str, _Slot] = {}
        self._order: list[str] = []
        self._bus = EventBus(on_lost=self._hooks.events_lost or None)
        self._nursery: trio.Nursery | None = None
        self._context: contextvars.Context | None = None
        self._now: Callable[[], float] = trio.current_time
        """Trio's clock; once running, read without the two calls ``trio.current_time`` adds."""
        self._deadlines = DeadlineWatch()
        self._escalation: RequiredServerError | None = None
        self._closing = False
        self._stop_requested = trio.Event()
        self._startup_changed = trio.Event()
        self._isolated_count = 0
        self._isolation_limits: dict[str, trio.Semaphore] = {}
        self._snapshot: Snapshot | None = None
        self.answering = Answering(self)
        """Handlers, roots and subscriptions per server, kept across restarts."""

    # ---- the shell's loop -------------------------------------------------------------

    async def run(
        self, *, task_status: trio.TaskStatus[SupervisorClient] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Start every server, report the client once startup is done, supervise until closed.

        Raises :class:`RequiredServerError` (after a clean teardown) if a required server
        cannot be started, or is dropped later. Cancellation tears down within the servers'
        shutdown bounds.
        """
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                self._context = contextvars.copy_context()
                self._now = trio.lowlevel.current_clock().current_time
                for spec in self.spec.servers:
                    self._slots[spec.name] = _Slot(spec.name, spec, transport_of(spec))
                    self._order.append(spec.name)
                members = [Member.from_spec(s) for s in self.spec.servers]
                self._spawn(self._deadlines.run, self._expire_overdue)
                self._apply(Lifecycle.initial(members, self.spec.groups, trio.current_time()))
                await self._wait_for_startup()
                if self._escalation is None:
                    task_status.started(SupervisorClient(self))
                    await self._stop_requested.wait()
                # Bounded by the servers' shutdown timeouts; a host error arriving meanwhile
                # must not turn an orderly stop into a mass cancellation.
                with trio.CancelScope(shield=True):
                    await self._shutdown()
                nursery.cancel_scope.cancel()
        except BaseException:
            if not self._closing:
                with trio.CancelScope(shield=True):
                    await self._shutdown()
            raise
        if self._escalation is not None:
            raise self._escalation

    @property
    def escalation(self) -> RequiredServerError | None:
        """The required server's failure that ended (or is ending) supervision, if any."""
        return self._escalation

    @asynccontextmanager
    async def subscribe(self, *, buffer: int = 1024) -> AsyncIterator[Subscription]:
        """Receive every lifecycle event from now on while the block runs.

        Usable before :meth:`run` starts, so a host can watch startup itself. The subscription
        holds at most ``buffer`` unread events; past that the oldest are discarded and an
        :class:`EventsLost` marker is delivered. Supervision never waits for a subscriber.
        """
        check_buffer(buffer)
        subscription = self._bus.open(buffer)
        try:
            yield subscription
        finally:
            self._bus.discard(subscription)

    async def aclose(self) -> None:
        """Ask :meth:`run` to shut down; returns at once (the owner awaits ``run``)."""
        self._stop_requested.set()
        await trio.lowlevel.checkpoint()

    async def _wait_for_startup(self) -> None:
        while not self._startup_done():
            self._startup_changed = trio.Event()
            await self._startup_changed.wait()

    def _startup_done(self) -> bool:
        if self._escalation is not None:
            return True
        life = self._lifecycle
        for name in self._order:
            slot = self._slots[name]
            state = life.state_of(name)
            if slot.spec.required:
                record = life.record(name)
                if state is ServerState.STOPPED and not record.wakeable:
                    # Finished under its restart type (temporary, or transient exiting
                    # cleanly): no restart will come, so startup cannot succeed.
                    self._escalation = RequiredServerError(name, record.last_cause)
                    return True
                if state is not ServerState.ACTIVE and not (
                    state is ServerState.STOPPED and record.wakeable
                ):
                    return False
            elif state is ServerState.STARTING and not slot.first_attempt_done:
                return False
        return True

    async def _shutdown(self) -> None:
        """Stop servers in reverse declared order, each within its shutdown bound."""
        if self._closing:
            return
        self._closing = True
        for each in self._slots.values():
            self._fail_outstanding(each, "the supervisor is shutting down")
        for name in reversed(list(self._slots)):
            slot = self._slots.get(name)
            if slot is None:
                continue
            if self._lifecycle.state_of(name) in (
                ServerState.STARTING,
                ServerState.ACTIVE,
                ServerState.FAILED,
            ):
                self._feed(Stop(name, trio.current_time()))
            self._stop_worker(slot, "the supervisor is shutting down")
            with trio.move_on_after(slot.spec.timeouts.shutdown + 1.0):
                await slot.worker_done.wait()
        for slot in self._slots.values():
            if slot.timer is not None:
                slot.timer.cancel()
            if slot.scope is not None:
                slot.scope.cancel()
            slot.notify()
        self._bus.close()
        self.answering.close()

    def _spawn(self, fn: Callable[..., Any], *args: object) -> None:
        """Start a task of the supervisor's own, in the context captured when ``run`` began.

        Trio copies the *calling* task's context into a new task; a lazy server woken by a
        request would otherwise run its worker with that caller's context variables.
        """
        assert self._nursery is not None and self._context is not None
        self._context.run(self._nursery.start_soon, fn, *args)

    # ---- feeding the core and carrying out its commands --------------------------------

    @property
    def _lifecycle(self) -> Lifecycle:
        assert self._life is not None, "the supervisor is not running"
        return self._life

    def _feed(self, inp: Input) -> Decision:
        """Step the core and carry out what it decided. Raises CommandRefusedError."""
        decision = self._lifecycle.step(inp, self._rng.random)
        self._apply(decision)
        return decision

    def _apply(self, decision: Decision) -> None:
        self._life = decision.state
        self._snapshot = None
        for event in decision.events:
            self._on_event(event)
        for command in decision.commands:
            self._execute(command)
        # A hook reading the status mid-decision may have built a snapshot: retire it too.
        self._snapshot = None
        self._startup_changed.set()

    def _on_event(self, event: LifecycleEvent) -> None:
        slot = self._slots.get(event.server)
        if slot is not None and event.kind == "state":
            if event.old is ServerState.STARTING:
                slot.first_attempt_done = True
            slot.notify()
        if self._hooks.state_changed:
            self._hooks.state_changed(event)
        self._bus.publish(event)
        log.info(
            "server.event",
            server=event.server,
            kind=event.kind,
            old=event.old.value if event.old else None,
            new=event.new.value if event.new else None,
            reason=event.reason,
            attempt=event.attempt,
            delay=event.delay,
            cause=event.cause,
        )

    def _execute(self, command: Command) -> None:
        if isinstance(command, StartServer):
            self._start_worker(command.server)
        elif isinstance(command, StopServer):
            slot = self._slots.get(command.server)
            if slot is not None:
                self._stop_worker(slot, self._stop_cause(command.server))
        elif isinstance(command, ScheduleRestart):
            self._arm_timer(command)
        elif isinstance(command, CancelRestart):
            slot = self._slots.get(command.server)
            if slot is not None and slot.timer is not None:
                slot.timer.cancel()
        elif isinstance(command, Escalate):
            if self._escalation is None:
                self._escalation = RequiredServerError(command.server, command.cause)
                self._stop_requested.set()
        elif isinstance(command, Forget):
            self.answering.forget(command.server)
            slot = self._slots.pop(command.server, None)
            if slot is not None:
                slot.removed = True
                if slot.timer is not None:
                    slot.timer.cancel()
                self._stop_worker(slot, "the server was removed")
                slot.notify()
            if command.server in self._order:
                self._order.remove(command.server)

    def _stop_cause(self, name: str) -> str:
        if self._closing:
            return "the supervisor is shutting down"
        if name not in self._slots or self._life is None or name not in self._life.names:
            return "the server was removed"
        reason = self._lifecycle.record(name).reason
        return f"the server was {_STOP_WORDS.get(reason, 'stopped')}"

    def _start_worker(self, name: str) -> None:
        slot = self._slots[name]
        previous = None if slot.lost else slot.worker_done
        # The outgoing worker's teardown ends within its own spec's shutdown bound, or, if it
        # is still waiting for its own predecessor, once that wait ends.
        until = max(trio.current_time() + slot.worker_shutdown + 1.0, slot.worker_until)
        self._stop_worker(slot, "the server is restarting")
        slot.generation += 1
        # A caller that finds every serving task busy hands its envelope over at once (the
        # mailbox is unbounded; the deadline watch keeps its deadline) rather than wait for room.
        mailbox = Mailbox[Envelope]()
        slot.send = slot.queue = mailbox
        slot.scope = trio.CancelScope()
        slot.worker_done = trio.Event()
        slot.lost = False
        slot.worker_shutdown = slot.spec.timeouts.shutdown
        slot.worker_until = until
        self._spawn(
            self._worker_task,
            name,
            slot,
            slot.generation,
            mailbox,
            slot.scope,
            slot.worker_done,
            previous,
            until,
        )

    def _stop_worker(self, slot: _Slot, cause: str) -> None:
        """Detach the current worker and cancel it: it shuts down within its bound."""
        scope = slot.scope
        self._detach(slot, cause)
        if scope is not None:
            # The worker's cancelled teardown is shielded and bounded by timeouts.shutdown.
            scope.cancel()

    def _detach(self, slot: _Slot, cause: str, *, worker_answers: bool = False) -> None:
        """Stop routing to the current worker; it will not be fed back from now on.

        Every request handed to it is answered now rather than when its teardown (bounded by
        ``timeouts.shutdown``) ends: the ones still queued as unsent (so they wait for the next
        session, or learn the server is gone), the rest as interrupted with ``cause``. With
        ``worker_answers`` (the worker itself reported the loss, and answers every envelope it
        took right after), taken envelopes are left to it: only it knows whether one reached
        the server, and one it took but never sent must wait for the next session.
        """
        slot.generation += 1
        queue, slot.queue = slot.queue, None
        while queue is not None:
            try:
                envelope = queue.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
            op = envelope.operation.name
            envelope.reply.set_error(RequestInterruptedError(slot.name, op, cause, sent=False))
            slot.outstanding.pop(envelope, None)
        if slot.send is not None:
            slot.send.close()
        if not worker_answers:
            self._fail_outstanding(slot, cause)
        slot.send = None
        if slot.ready is not None or slot.pid is not None:
            self._snapshot = None
        slot.ready = None
        slot.pid = None

    def _fail_outstanding(self, slot: _Slot, cause: str) -> None:
        if not slot.outstanding:
            return
        for envelope in list(slot.outstanding):
            op = envelope.operation.name
            error = RequestInterruptedError(slot.name, op, cause, sent=True)
            envelope.reply.set_error(error)
            envelope.cancel()
        slot.outstanding.clear()

    async def _worker_task(
        self,
        name: str,
        slot: _Slot,
        generation: int,
        receive: Mailbox[Envelope],
        scope: trio.CancelScope,
        done: trio.Event,
        previous: trio.Event | None,
        until: float,
    ) -> None:
        """Run one worker, once ``previous`` (the worker it replaces, unless that one's server
        is gone) is done or ``until`` has passed: see :meth:`_await_previous`.
        ``done`` is set only once ``previous`` is too (or ``until`` passed), even when this
        worker is cancelled while it waits, so the next worker waits for both."""
        report = _Report(self, name, generation)
        hooks = WorkerHooks(on_catalog=report.on_catalog, on_lost=report.on_lost)
        try:
            with scope:
                if previous is not None:
                    await self._await_previous(name, previous, until)
                    previous = None  # an idle worker keeps nothing of the one before it
                try:
                    exit = await run_worker(
                        slot.spec,
                        receive,
                        hooks,
                        label=name,
                        server_side=self.answering.side(name, slot.spec),
                        task_status=report,
                    )
                except StartError as error:
                    self._report(
                        name, generation, StartFailed(name, trio.current_time(), str(error))
                    )
                    return
                except Exception as error:  # a worker bug must not take the supervisor down
                    log.exception("worker.crashed", server=name)
                    inp = self._exit_input(name, generation, "abnormal", repr(error))
                    self._report(name, generation, inp)
                    return
            if scope.cancelled_caught or exit.kind == "stopped":
                return
            kind = "normal" if exit.kind == "normal" else "abnormal"
            self._report(name, generation, self._exit_input(name, generation, kind, exit.cause))
        except Exception:
            # What a cancelled worker raised besides Cancelled: it was being stopped anyway,
            # and its failure must not become the host's.
            log.debug("worker.stopped_with_error", server=name, exc_info=True)
        finally:
            if previous is not None and not previous.is_set():
                with trio.CancelScope(deadline=until, shield=True):
                    await previous.wait()
            done.set()

    @staticmethod
    async def _await_previous(name: str, previous: trio.Event, until: float) -> None:
        """Start only once the server's previous session has ended, as OTP restarts a child
        only after it terminated: a server stopped for a restart (its group's, a reload's,
        ``restart``), or one that hung or closed its pipes, would otherwise run twice at once
        and could lose a port, a lock or a file to its old self. Only a session whose server
        is already gone (:meth:`_on_lost`) is not waited for. The wait is bounded, as the old
        worker's teardown is, by its spec's ``timeouts.shutdown`` (plus a second)."""
        if previous.is_set():
            return
        log.debug("server.waiting_for_previous", server=name)
        with trio.move_on_at(until):
            await previous.wait()
        if not previous.is_set():
            log.warning("server.previous_overstayed", server=name)

    def _exit_input(self, name: str, generation: int, kind: str, cause: str) -> Input:
        slot = self._slots.get(name)
        now = trio.current_time()
        if slot is not None and slot.generation == generation and slot.ready is None:
            return StartFailed(name, now, cause)
        return Exited(name, now, "normal" if kind == "normal" else "abnormal", cause)

    def _report(
        self, name: str, generation: int, inp: Input, *, worker_answers: bool = False
    ) -> None:
        """Feed a worker's news to the core unless that worker was detached meanwhile."""
        slot = self._slots.get(name)
        if slot is None or slot.generation != generation or self._closing:
            return
        if isinstance(inp, Exited | StartFailed):
            cause = inp.cause or "the server went away"
            self._detach(slot, cause, worker_answers=worker_answers)
        try:
            self._feed(inp)
        except CommandRefusedError:
            log.debug("server.stale_input", server=name, input=type(inp).__name__)

    def _on_lost(self, name: str, generation: int, cause: str, kind: str, gone: bool) -> None:
        """The worker knows its session is gone: tell the core now, not after teardown.

        The old worker is detached (its eventual exit is ignored) and goes on tearing down
        while the core's decision is carried out: a restart starts at once if ``gone`` (the
        link's :meth:`~mcpvisor.workers.link.Link.server_gone`), else once that teardown ends.
        """
        slot = self._slots.get(name)
        if slot is None or slot.generation != generation or self._closing:
            return
        # With the server gone, a replacement may start while this one tears down;
        # otherwise it waits for that teardown (see _await_previous).
        slot.lost = gone
        now = trio.current_time()
        inp: Input = Exited(name, now, "normal" if kind == "normal" else "abnormal", cause)
        self._report(name, generation, inp, worker_answers=True)

    def _on_ready(self, name: str, generation: int, ready: Ready) -> None:
        slot = self._slots.get(name)
        if slot is None or slot.generation != generation or self._closing:
            return
        slot.ready = ready
        slot.pid = ready.pid
        slot.catalog = ready.catalog
        if self._hooks.catalog_changed:
            self._hooks.catalog_changed(name, slot.catalog, _ALL_PARTS)
        self._feed(Started(name, trio.current_time()))
        idle = slot.spec.idle_shutdown
        if idle is not None and slot.isolated_of is None and self._nursery is not None:
            self._spawn(self._idle_watch, name, slot, generation, idle)

    def _on_catalog(
        self, name: str, generation: int, catalog: Catalog, parts: frozenset[CatalogPart]
    ) -> None:
        """A list_changed refetch: replace the catalog whole, and say which parts came back."""
        slot = self._slots.get(name)
        if slot is None or slot.generation != generation:
            return
        slot.catalog = catalog
        self._snapshot = None
        if self._hooks.catalog_changed:
            self._hooks.catalog_changed(name, catalog, parts)
        now = trio.current_time()
        state = self._lifecycle.state_of(name)
        kinds = {_CHANGE_KINDS[part] for part in parts}
        for kind in ("tools_changed", "resources_changed", "prompts_changed"):
            if kind in kinds:
                self._on_event(
                    LifecycleEvent(
                        server=name, old=state, new=state, reason=kind, at=now, kind=kind
                    )
                )

    def _arm_timer(self, command: ScheduleRestart) -> None:
        slot = self._slots[command.server]
        if slot.timer is not None:
            slot.timer.cancel()
        slot.timer = trio.CancelScope()
        self._spawn(self._timer_task, command, slot.timer)

    async def _timer_task(self, command: ScheduleRestart, scope: trio.CancelScope) -> None:
        with scope:
            await trio.sleep(command.delay)
            if self._closing or command.server not in self._slots:
                return
            try:
                self._feed(TimerFired(command.server, trio.current_time(), command.token))
            except CommandRefusedError:
                log.debug("server.stale_timer", server=command.server)

    async def _idle_watch(self, name: str, slot: _Slot, generation: int, idle: float) -> None:
        slot.last_used = max(slot.last_used, trio.current_time())
        while slot.generation == generation and not self._closing:
            deadline = slot.last_used + idle
            now = trio.current_time()
            if not slot.outstanding and now >= deadline:
                with suppress(CommandRefusedError):
                    self._feed(IdleTimeout(name, now))
                return
            await trio.sleep_until(max(deadline, now + idle / 100))

    # ---- the RuntimeInterface -------------------------------------------------------------

    @property
    def closing(self) -> bool:
        """Whether the supervisor is shutting down."""
        return self._closing

    def snapshot(self) -> Snapshot:
        """The status and catalogs as of the last decision; rebuilt only after a change."""
        snapshot = self._snapshot
        if snapshot is None:
            snapshot = self._snapshot = self._build_snapshot()
        return snapshot

    def _build_snapshot(self) -> Snapshot:
        life = self._lifecycle
        known = life.members
        servers: dict[str, ServerStatus] = {}
        catalogs: dict[str, Catalog] = {}
        for name in self._order:
            slot = self._slots.get(name)
            if slot is None or name not in known:
                continue  # being removed by the decision in progress
            record = life.record(name)
            servers[name] = ServerStatus(
                name=name,
                state=record.state,
                since=record.since,
                restarts=record.restarts,
                last_error=record.last_cause,
                required=slot.spec.required,
                group=slot.spec.group,
                transport=slot.transport,
                pid=slot.pid if record.state is ServerState.ACTIVE else None,
                tools=len(slot.catalog.tools),
                wakeable=record.wakeable,
                isolated_of=slot.isolated_of,
            )
            catalogs[name] = slot.catalog
        return Snapshot(SupervisorStatus(servers=servers, at=trio.current_time()), catalogs)

    async def dispatch(
        self,
        server: str,
        op: str,
        build: Callable[[], Operation],
        *,
        timeout: float | None = None,
    ) -> object:
        """See :meth:`RuntimeInterface.dispatch`."""
        slot = self._slots.get(server)
        # Built before the hooks hear of the request, so that they see what it names; a
        # mistake in it is raised below, after an unknown server and a bad timeout.
        operation: Operation | None = None
        mistake: Exception | None = None
        try:
            operation = build()
        except Exception as raised:
            mistake = raised
        call: RequestCall | None = None
        if self._request_hooks:
            kind = OPERATIONS.get(op)
            call = RequestCall(
                server=server,
                op=op,
                method=(operation.method if operation is not None else kind.method if kind else ""),
                target=operation.target if operation is not None else None,
                transport=slot.transport if slot is not None else "",
                started=self._now(),
            )
            self._hooks.request_started(call)
        error: BaseException | None = None
        try:
            if slot is None:
                raise UnknownServerError(server, self._configured())
            limit = check_timeout(timeout, server)
            if isinstance(mistake, UsageError):
                raise UsageError(mistake.parameter, mistake.message, server=server) from None
            if mistake is not None:
                raise mistake
            assert operation is not None
            if limit is None:
                limit = slot.spec.timeouts.request
            result = await self._deliver(server, slot, operation, limit, call)
            if call is not None and isinstance(result, CallToolResult) and result.is_error:
                call.tool_error = True
            return result
        except BaseException as caught:
            error = caught
            raise
        finally:
            if call is not None:
                call.error = error
                call.outcome = _outcome(error)
                call.duration = self._now() - call.started
                self._hooks.request_finished(call)

    async def _deliver(
        self,
        name: str,
        slot: _Slot,
        operation: Operation,
        limit: float,
        call: RequestCall | None,
    ) -> object:
        deadline = self._now() + limit
        retried = False
        send = self._ready_send(name, slot)
        if send is not None:
            # The common case costs no cancel scope: the envelope goes on the channel at once,
            # and the deadline watch fails its reply and cancels the call at its deadline.
            try:
                return await self._send(name, slot, send, operation, deadline, call)
            except RequestTimeoutError:
                raise RequestTimeoutError(name, operation.name, limit) from None
            except RequestInterruptedError as error:
                if error.sent and not operation.retry_safe:
                    raise
                if slot.removed:
                    raise ServerUnavailableError(name, None, "the server was removed") from error
                retried = error.sent
        # Otherwise the caller holds the deadline itself while it waits for a starting server.
        with trio.CancelScope(deadline=deadline) as bound:
            while True:
                try:
                    send = await self._acquire(name, slot, call)
                    return await self._send(name, slot, send, operation, deadline, call)
                except RequestTimeoutError:
                    raise RequestTimeoutError(name, operation.name, limit) from None
                except RequestInterruptedError as error:
                    # A request that never reached the server waits for the next session,
                    # whatever it is; one that did is retried only if it is retry-safe.
                    if error.sent and (retried or not operation.retry_safe):
                        raise
                    if slot.removed:
                        raise ServerUnavailableError(
                            name, None, "the server was removed"
                        ) from error
                    retried = retried or error.sent
        assert bound.cancelled_caught
        raise RequestTimeoutError(name, operation.name, limit)

    def _expire_overdue(self, name: str, envelope: Envelope) -> None:
        """Fail a call past its deadline and cancel it.

        A queued envelope is then never sent, and a call in flight is cancelled (the server
        hears ``notifications/cancelled``). An in-process sync tool's thread cannot be stopped:
        its serving task goes on until the tool returns, and the late answer is dropped.
        """
        # The caller's own limit replaces this timeout (see _deliver).
        envelope.reply.set_error(RequestTimeoutError(name, envelope.operation.name, 0.0))
        envelope.cancel()

    def _configured(self) -> list[str]:
        """The names an unknown server's error may suggest: never an isolated session's."""
        return [n for n in self._order if self._slots[n].isolated_of is None]

    def _ready_send(self, name: str, slot: _Slot) -> Mailbox[Envelope] | None:
        """The worker's channel if a request can be handed to it now, without waiting."""
        send = slot.send
        life = self._life
        if send is None or life is None or self._closing or slot.removed:
            return None
        if life.record(name).state is not ServerState.ACTIVE:
            return None
        return send

    async def _acquire(self, name: str, slot: _Slot, call: RequestCall | None) -> Mailbox[Envelope]:
        began: float | None = None
        try:
            while True:
                if self._closing:
                    raise ServerUnavailableError(name, None, "the supervisor is shutting down")
                if slot.removed:
                    raise ServerUnavailableError(name, None, "the server was removed")
                record = self._lifecycle.record(name)
                if record.state is ServerState.ACTIVE and slot.send is not None:
                    return slot.send
                if record.state is ServerState.STOPPED and record.wakeable:
                    self._feed(Wake(name, trio.current_time()))
                    continue
                if record.state in (ServerState.DROPPED, ServerState.STOPPED):
                    raise ServerUnavailableError(name, record.state, record.last_cause)
                if began is None:
                    began = trio.current_time()
                await slot.changed.wait()
        finally:
            if call is not None and began is not None:
                call.waited += trio.current_time() - began

    async def _send(
        self,
        name: str,
        slot: _Slot,
        send: Mailbox[Envelope],
        operation: Operation,
        deadline: float,
        call: RequestCall | None,
    ) -> object:
        envelope = Envelope(operation, Reply(), deadline, contextvars.copy_context())
        if call is not None:
            call.attempt += 1
            if slot.ready is not None:
                call.protocol_version = slot.ready.protocol_version
            self._hooks.request_attempt(call)
        # Outstanding, the envelope keeps an idle watch from stopping the server under it;
        # last_used is stamped when it is answered.
        slot.outstanding[envelope] = None
        self._deadlines.watch(name, envelope)
        try:
            try:
                # The channel is unbounded; the reply wait below is the checkpoint.
                send.send_nowait(envelope)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                raise RequestInterruptedError(
                    name, operation.name, "the server went away", sent=False
                ) from None
            return await envelope.reply.wait()
        except trio.Cancelled:
            envelope.cancel()
            raise
        except RequestInterruptedError as error:
            if call is not None and not error.sent:
                # Refused before it was sent (its session was already ending): no attempt.
                call.attempt -= 1
            raise
        finally:
            slot.outstanding.pop(envelope, None)
            slot.last_used = self._now()

    def control(self, command: Control, server: str) -> None:
        """See :meth:`RuntimeInterface.control`."""
        if server not in self._slots:
            raise UnknownServerError(server, self._configured())
        self._feed(_CONTROLS[command](server, trio.current_time()))

    async def add(self, spec: ServerSpec) -> ServerStatus:
        """See :meth:`RuntimeInterface.add`."""
        if self._closing:
            raise ServerUnavailableError(spec.name, None, "the supervisor is shutting down")
        if spec.name in self._slots:
            raise CommandRefusedError(
                spec.name,
                "add",
                self._lifecycle.state_of(spec.name),
                "a server of that name is already supervised",
            )
        if spec.group is not None and spec.group not in self.spec.groups:
            raise ConfigError([Problem(f"{spec.name}.group", f"unknown group {spec.group!r}")])
        self._add(spec)
        slot = self._slots[spec.name]
        while not slot.removed and self._lifecycle.state_of(spec.name) is ServerState.STARTING:
            await slot.changed.wait()
        if slot.removed or self._closing:
            raise ServerUnavailableError(spec.name, None, "the server was removed")
        return self.snapshot().status.servers[spec.name]

    async def remove(self, server: str) -> None:
        """See :meth:`RuntimeInterface.remove`."""
        slot = self._slots.get(server)
        if slot is None:
            raise UnknownServerError(server, self._configured())
        self._feed(Remove(server, trio.current_time()))
        with trio.move_on_after(slot.spec.timeouts.shutdown + 1.0):
            await slot.worker_done.wait()

    @asynccontextmanager
    async def isolated(
        self, server: str, handlers: ClientHandlers | None = None
    ) -> AsyncIterator[str]:
        """See :meth:`RuntimeInterface.isolated`."""
        if self._closing:
            raise ServerUnavailableError(server, None, "the supervisor is shutting down")
        slot = self._slots.get(server)
        if slot is None or slot.isolated_of is not None:
            raise UnknownServerError(server, self._configured())
        async with self._isolation_limit(server):
            label = self._add_isolated(slot.spec)
            self.answering.isolate(label, server, slot.spec, handlers)
            try:
                iso = self._slots[label]
                while self._lifecycle.state_of(label) is ServerState.STARTING:
                    await iso.changed.wait()
                record = self._lifecycle.record(label)
                if record.state is not ServerState.ACTIVE:
                    raise ServerUnavailableError(label, record.state, record.last_cause)
                yield label
            finally:
                with trio.CancelScope(shield=True):
                    await self._remove_isolated(label)

    async def close(self) -> None:
        """See :meth:`RuntimeInterface.close`."""
        await self.aclose()

    # ---- adding and isolating -------------------------------------------------------------

    def _add(
        self, spec: ServerSpec, member: Member | None = None, isolated_of: str | None = None
    ) -> None:
        member = member or Member.from_spec(spec)
        self._slots[member.name] = _Slot(
            member.name, spec, transport_of(spec), isolated_of=isolated_of
        )
        self._order.append(member.name)
        try:
            self._feed(Add(member, trio.current_time()))
        except BaseException:
            self._slots.pop(member.name, None)
            self._order.remove(member.name)
            self._snapshot = None
            raise

    async def reconfigure(self, spec: SupervisorSpec) -> ReconfigureReport:
        """See :meth:`RuntimeInterface.reconfigure`."""
        if self._closing:
            raise ServerUnavailableError("*", None, "the supervisor is shutting down")
        report = self._reconfigure(spec)
        for name in (*report.added, *report.restarted):
            slot = self._slots.get(name)
            while (
                slot is not None
                and not slot.removed
                and not self._closing
                and self._lifecycle.state_of(name) is ServerState.STARTING
            ):
                await slot.changed.wait()
        await trio.lowlevel.checkpoint()
        return report

    def reject_reload(self, error: BaseException) -> None:
        """See :meth:`RuntimeInterface.reject_reload`."""
        self._on_event(reload_event(trio.current_time(), error=error))

    def _reconfigure(self, spec: SupervisorSpec) -> ReconfigureReport:
        """Adopt ``spec`` in one synchronous step (see reconfigure.py); publish a reload event.

        Raises ConfigError (UsageError for a non-spec) and changes nothing if it cannot.
        """
        now = trio.current_time()
        isolated = [n for n in self._order if self._slots[n].isolated_of is not None]
        try:
            configured = [self._slots[n].spec for n in self._order if n not in isolated]
            old = SupervisorSpec(
                servers=configured, groups=self._lifecycle.groups, handlers=self.spec.handlers
            )
            report = plan_reconfigure(old, spec)
            extra = [self._lifecycle.member(n) for n in isolated]
            inp = core_input(report, spec, extra, now)
            decision = self._lifecycle.step(inp, self._rng.random)
        except (ConfigError, UsageError, CommandRefusedError) as error:
            self.reject_reload(error)
            if isinstance(error, CommandRefusedError):
                raise ConfigError([Problem(f"servers.{error.server}", error.reason)]) from error
            raise
        self._on_event(reload_event(now, report=report))
        for server in spec.servers:
            slot = self._slots.get(server.name)
            if slot is None:
                self._slots[server.name] = _Slot(server.name, server, transport_of(server))
            else:
                slot.spec, slot.transport = server, transport_of(server)
        for name in (*report.restarted, *report.removed):
            self._isolation_limits.pop(name, None)
        for name in report.updated:
            if "max_isolated" in report.fields[name]:
                self._isolation_limits.pop(name, None)
        self._order = [*spec.names, *isolated]
        self.spec = spec
        self.answering.respec(spec, [*report.restarted, *report.updated])
        self._apply(decision)
        return report

    def _isolation_limit(self, name: str) -> trio.Semaphore:
        limit = self._isolation_limits.get(name)
        if limit is None:
            limit = self._isolation_limits[name] = trio.Semaphore(
                self._slots[name].spec.max_isolated
            )
        return limit

    def _add_isolated(self, spec: ServerSpec) -> str:
        """Add a never-restarted copy of ``spec`` under a label no configured name can take."""
        self._isolated_count += 1
        label = f"{spec.name}~{self._isolated_count}"
        member = Member(
            name=label,
            policy=attrs.evolve(spec.restart, restart="temporary"),
            group=None,
            required=False,
            start="eager",
        )
        self._add(spec, member, isolated_of=spec.name)
        return label

    async def _remove_isolated(self, label: str) -> None:
        slot = self._slots.get(label)
        if slot is None:
            return
        if not self._closing:
            self._feed(Remove(label, trio.current_time()))
        else:
            self._stop_worker(slot, "the supervisor is shutting down")
        with trio.move_on_after(slot.spec.timeouts.shutdown + 1.0):
            await slot.worker_done.wait()


@asynccontextmanager
async def open_supervisor(
    spec: SupervisorSpec,
    *,
    hooks: Hooks | Iterable[Hooks] | None = None,
    rng: random.Random | None = None,
) -> AsyncIterator[SupervisorClient]:
    """Supervise ``spec``'s servers for the duration of the block; yields a SupervisorClient.

    Returns once every required server is ACTIVE and every optional one has finished its
    first start attempt. Raises :class:`RequiredServerError` if a required server cannot be
    started within its restart budget, or, on leaving the block, if one was dropped while
    it ran (escalation). Leaving the block stops every server in reverse declared order.
    ``hooks`` (a :class:`~mcpvisor.Hooks` or a sequence of them) and ``rng`` are passed to
    :class:`Supervisor`.
    """
    supervisor = Supervisor(spec, hooks=hooks, rng=rng)
    try:
        async with trio.open_nursery() as nursery:
            client: SupervisorClient = await nursery.start(supervisor.run)
            try:
                yield client
            finally:
                await supervisor.aclose()
    except BaseException as error:
        escalated = supervisor.escalation
        if (
            escalated is not None
            and error is not escalated
            and not isinstance(error, trio.Cancelled)
        ):
            # A required server was dropped: that is why the host's calls began failing.
            raise escalated from error
        if isinstance(error, BaseExceptionGroup):
            raise _collapse(error) from None
        raise


def _collapse(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The single real error inside a nursery's group, so hosts can ``except`` it plainly."""
    leaves: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)
        elif not isinstance(exc, trio.Cancelled):
            leaves.append(exc)

    walk(group)
    if len(leaves) == 1:
        return leaves[0]
    return group
