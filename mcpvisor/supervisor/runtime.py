"""The imperative shell: carries out the lifecycle core's decisions with Trio.

One :class:`Supervisor` owns a nursery. Each server gets a worker task in it that owns the
server's session; the supervisor never touches a session itself. Every input (a worker became
ready, a worker's server died, a timer fired, a host command) is fed to the pure
:class:`~mcpvisor.supervisor.lifecycle.Lifecycle`, and the commands it returns are carried out
here, synchronously and without awaiting, so no decision is ever made in this module.
"""

from __future__ import annotations

import math
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import attrs
import trio

from mcpvisor.specs import InProcessSpec, ServerSpec, SseSpec, StdioSpec, SupervisorSpec
from mcpvisor.specs._logging import library_logger
from mcpvisor.specs.errors import ConfigError, Problem, UsageError
from mcpvisor.supervisor.errors import RequiredServerError
from mcpvisor.supervisor.events import EventBus, Subscription
from mcpvisor.supervisor.lifecycle import (
    Add,
    CancelRestart,
    Command,
    CommandRefusedError,
    Decision,
    Escalate,
    Exited,
    Forget,
    IdleTimeout,
    Input,
    Lifecycle,
    LifecycleEvent,
    Member,
    Remove,
    ScheduleRestart,
    ServerState,
    Started,
    StartFailed,
    StartServer,
    Stop,
    StopServer,
    TimerFired,
)
from mcpvisor.supervisor.reconfigure import (
    ReconfigureReport,
    core_input,
    plan_reconfigure,
    reload_event,
)
from mcpvisor.supervisor.status import ServerStatus, SupervisorStatus
from mcpvisor.workers import Envelope, Ready, StartError, WorkerHooks, run_worker

log = library_logger()


def transport_of(spec: ServerSpec) -> str:
    """A short name for how ``spec`` is reached: stdio, http, sse or inprocess."""
    if isinstance(spec, StdioSpec):
        return "stdio"
    if isinstance(spec, SseSpec):
        return "sse"
    if isinstance(spec, InProcessSpec):
        return "inprocess"
    return "http"


def _set_event() -> trio.Event:
    """An event already set: a slot that never ran a worker has none to wait for."""
    event = trio.Event()
    event.set()
    return event


@attrs.define(eq=False)
class _Slot:
    """The runtime's bookkeeping for one server: its current worker and its caches.

    ``changed`` is set and replaced on every state change, so waiters re-check the state.
    """

    spec: ServerSpec
    isolated_of: str | None = None
    generation: int = 0
    send: trio.MemorySendChannel[Envelope] | None = None
    scope: trio.CancelScope | None = None
    worker_done: trio.Event = attrs.Factory(_set_event)
    ready: Ready | None = None
    changed: trio.Event = attrs.Factory(trio.Event)
    timer: trio.CancelScope | None = None
    tools: tuple[Any, ...] = ()
    lists: dict[str, Any] = attrs.Factory(dict)
    first_attempt_done: bool = False
    removed: bool = False
    inflight: int = 0
    last_used: float = -math.inf
    pid: int | None = None

    def notify(self) -> None:
        self.changed.set()
        self.changed = trio.Event()


class _ReadyReport:
    """The ``task_status`` a worker reports readiness through, routed into the core."""

    def __init__(self, supervisor: Supervisor, name: str, generation: int) -> None:
        self._supervisor = supervisor
        self._name = name
        self._generation = generation

    def started(self, value: Ready | None = None) -> None:
        assert value is not None
        self._supervisor._on_ready(self._name, self._generation, value)


class Supervisor:
    """Supervises the servers of a :class:`SupervisorSpec` inside a nursery the host owns.

    ``client = await nursery.start(Supervisor(spec).run)`` returns a
    :class:`~mcpvisor.SupervisorClient` once startup is done (see :func:`open_supervisor`).
    ``rng`` supplies backoff jitter; pass a seeded ``random.Random`` for repeatable runs.
    """

    def __init__(self, spec: SupervisorSpec, *, rng: random.Random | None = None) -> None:
        self.spec = spec
        self._rng = rng or random.Random()
        self._life: Lifecycle | None = None
        self._slots: dict[str, _Slot] = {}
        self._order: list[str] = []
        self._bus = EventBus()
        self._nursery: trio.Nursery | None = None
        self._escalation: RequiredServerError | None = None
        self._closing = False
        self._stop_requested = trio.Event()
        self._startup_changed = trio.Event()
        self._isolated_count = 0
        self._isolation_limits: dict[str, trio.Semaphore] = {}

    # ---- the shell's loop -------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        """Start every server, report the client once startup is done, supervise until closed.

        Raises :class:`RequiredServerError` (after a clean teardown) if a required server
        cannot be started, or is dropped later. Cancellation tears down within the servers'
        shutdown bounds.
        """
        from mcpvisor.supervisor.client import SupervisorClient

        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                for spec in self.spec.servers:
                    self._slots[spec.name] = _Slot(spec)
                    self._order.append(spec.name)
                members = [Member.from_spec(s) for s in self.spec.servers]
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

    @asynccontextmanager
    async def subscribe(self, *, buffer: int = 1024) -> AsyncIterator[Subscription]:
        """Receive every lifecycle event from now on while the block runs.

        Usable before :meth:`run` starts, so a host can watch startup itself. The subscription
        holds at most ``buffer`` unread events; past that the oldest are discarded and an
        :class:`EventsLost` marker is delivered. Supervision never waits for a subscriber.
        """
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
            self._stop_worker(slot)
            with trio.move_on_after(slot.spec.timeouts.shutdown + 1.0):
                await slot.worker_done.wait()
        for slot in self._slots.values():
            if slot.timer is not None:
                slot.timer.cancel()
            if slot.scope is not None:
                slot.scope.cancel()
            slot.notify()
        self._bus.close()

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
        for event in decision.events:
            self._on_event(event)
        for command in decision.commands:
            self._execute(command)
        self._startup_changed.set()

    def _on_event(self, event: LifecycleEvent) -> None:
        slot = self._slots.get(event.server)
        if slot is not None and event.kind == "state":
            if event.old is ServerState.STARTING:
                slot.first_attempt_done = True
            slot.notify()
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
                self._stop_worker(slot)
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
            slot = self._slots.pop(command.server, None)
            if slot is not None:
                slot.removed = True
                if slot.timer is not None:
                    slot.timer.cancel()
                self._stop_worker(slot)
                slot.notify()
            if command.server in self._order:
                self._order.remove(command.server)

    def _start_worker(self, name: str) -> None:
        slot = self._slots[name]
        assert self._nursery is not None
        self._stop_worker(slot)
        slot.generation += 1
        slot.ready = None
        slot.lists.clear()
        capacity = max(1, slot.spec.max_concurrency)
        send, receive = trio.open_memory_channel[Envelope](capacity)
        slot.send = send
        slot.scope = trio.CancelScope()
        slot.worker_done = trio.Event()
        self._nursery.start_soon(
            self._worker_task, name, slot, slot.generation, receive, slot.scope, slot.worker_done
        )

    def _stop_worker(self, slot: _Slot) -> None:
        """Detach the current worker: it will not be fed back, and it shuts down."""
        slot.generation += 1
        if slot.send is not None:
            slot.send.close()
        if slot.scope is not None:
            # The worker's cancelled teardown is shielded and bounded by timeouts.shutdown; it
            # fails queued envelopes as unsent, so none runs on a server that is no longer
            # ACTIVE, and a worker whose every slot is busy still stops at once.
            slot.scope.cancel()
        slot.send = None
        slot.ready = None

    async def _worker_task(
        self,
        name: str,
        slot: _Slot,
        generation: int,
        receive: trio.MemoryReceiveChannel[Envelope],
        scope: trio.CancelScope,
        done: trio.Event,
    ) -> None:
        hooks = WorkerHooks(
            on_tools_changed=lambda tools: self._on_tools(name, generation, tools),
            on_resources_changed=lambda resources, _templates: self._on_list(
                name, generation, "list_resources", resources
            ),
            on_prompts_changed=lambda prompts: self._on_list(
                name, generation, "list_prompts", prompts
            ),
        )
        try:
            with scope:
                try:
                    exit = await run_worker(
                        slot.spec,
                        receive,
                        hooks,
                        label=name,
                        task_status=_ReadyReport(self, name, generation),
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
            done.set()

    def _exit_input(self, name: str, generation: int, kind: str, cause: str) -> Input:
        slot = self._slots.get(name)
        now = trio.current_time()
        if slot is not None and slot.generation == generation and slot.ready is None:
            return StartFailed(name, now, cause)
        return Exited(name, now, "normal" if kind == "normal" else "abnormal", cause)

    def _report(self, name: str, generation: int, inp: Input) -> None:
        """Feed a worker's news to the core unless that worker was detached meanwhile."""
        slot = self._slots.get(name)
        if slot is None or slot.generation != generation or self._closing:
            return
        if isinstance(inp, Exited | StartFailed):
            slot.send = None
            slot.ready = None
            slot.pid = None
        try:
            self._feed(inp)
        except CommandRefusedError:
            log.debug("server.stale_input", server=name, input=type(inp).__name__)

    def _on_ready(self, name: str, generation: int, ready: Ready) -> None:
        slot = self._slots.get(name)
        if slot is None or slot.generation != generation or self._closing:
            return
        slot.ready = ready
        slot.tools = tuple(ready.tools)
        slot.lists["list_resources"] = tuple(ready.resources)
        slot.lists["list_prompts"] = tuple(ready.prompts)
        slot.pid = ready.pid
        self._feed(Started(name, trio.current_time()))
        idle = slot.spec.idle_shutdown
        if idle is not None and slot.isolated_of is None and self._nursery is not None:
            self._nursery.start_soon(self._idle_watch, name, slot, generation, idle)

    def _on_tools(self, name: str, generation: int, tools: tuple[Any, ...]) -> None:
        slot = self._slots.get(name)
        if slot is None or slot.generation != generation:
            return
        slot.tools = tuple(tools)
        now = trio.current_time()
        state = self._lifecycle.state_of(name)
        self._on_event(
            LifecycleEvent(
                server=name,
                old=state,
                new=state,
                reason="tools_changed",
                at=now,
                kind="tools_changed",
            )
        )

    def _on_list(self, name: str, generation: int, op: str, items: tuple[Any, ...]) -> None:
        slot = self._slots.get(name)
        if slot is not None and slot.generation == generation:
            slot.lists[op] = tuple(items)

    def _arm_timer(self, command: ScheduleRestart) -> None:
        slot = self._slots[command.server]
        assert self._nursery is not None
        if slot.timer is not None:
            slot.timer.cancel()
        slot.timer = trio.CancelScope()
        self._nursery.start_soon(self._timer_task, command, slot.timer)

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
            if slot.inflight == 0 and now >= deadline:
                with suppress(CommandRefusedError):
                    self._feed(IdleTimeout(name, now))
                return
            await trio.sleep_until(max(deadline, now + idle / 100))

    # ---- what the client handle uses ----------------------------------------------------

    def _status(self) -> SupervisorStatus:
        life = self._lifecycle
        servers: dict[str, ServerStatus] = {}
        for name in self._order:
            slot = self._slots[name]
            record = life.record(name)
            servers[name] = ServerStatus(
                name=name,
                state=record.state,
                since=record.since,
                restarts=record.restarts,
                last_error=record.last_cause,
                required=slot.spec.required,
                group=slot.spec.group,
                transport=transport_of(slot.spec),
                pid=slot.pid if record.state is ServerState.ACTIVE else None,
                tools=len(slot.tools),
                wakeable=record.wakeable,
                isolated_of=slot.isolated_of,
            )
        return SupervisorStatus(servers=servers, at=trio.current_time())

    def _add(
        self, spec: ServerSpec, member: Member | None = None, isolated_of: str | None = None
    ) -> None:
        member = member or Member.from_spec(spec)
        self._slots[member.name] = _Slot(spec, isolated_of=isolated_of)
        self._order.append(member.name)
        try:
            self._feed(Add(member, trio.current_time()))
        except BaseException:
            self._slots.pop(member.name, None)
            self._order.remove(member.name)
            raise

    def _reconfigure(self, spec: SupervisorSpec) -> ReconfigureReport:
        """Adopt ``spec`` in one synchronous step (see reconfigure.py); publish a reload event.

        Raises ConfigError (UsageError for a non-spec) and changes nothing if it cannot.
        """
        now = trio.current_time()
        isolated = [n for n in self._order if self._slots[n].isolated_of is not None]
        try:
            configured = [self._slots[n].spec for n in self._order if n not in isolated]
            old = SupervisorSpec(servers=configured, groups=self._lifecycle.groups)
            report = plan_reconfigure(old, spec)
            extra = [self._lifecycle.member(n) for n in isolated]
            inp = core_input(report, spec, extra, now)
            decision = self._lifecycle.step(inp, self._rng.random)
        except (ConfigError, UsageError, CommandRefusedError) as error:
            self._on_event(reload_event(now, error=error))
            if isinstance(error, CommandRefusedError):
                raise ConfigError([Problem(f"servers.{error.server}", error.reason)]) from error
            raise
        self._on_event(reload_event(now, report=report))
        for server in spec.servers:
            slot = self._slots.setdefault(server.name, _Slot(server))
            slot.spec = server
        for name in (*report.restarted, *report.removed):
            self._isolation_limits.pop(name, None)
            if name in report.restarted:
                self._slots[name].tools = ()
        self._order = [*spec.names, *isolated]
        self.spec = spec
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
            self._stop_worker(slot)
        with trio.move_on_after(slot.spec.timeouts.shutdown + 1.0):
            await slot.worker_done.wait()


@asynccontextmanager
async def open_supervisor(
    spec: SupervisorSpec, *, rng: random.Random | None = None
) -> AsyncIterator[Any]:
    """Supervise ``spec``'s servers for the duration of the block; yields a SupervisorClient.

    Returns once every required server is ACTIVE and every optional one has finished its
    first start attempt. Raises :class:`RequiredServerError` if a required server cannot be
    started within its restart budget, or, on leaving the block, if one was dropped while
    it ran (escalation). Leaving the block stops every server in reverse declared order.
    """
    supervisor = Supervisor(spec, rng=rng)
    try:
        async with trio.open_nursery() as nursery:
            client = await nursery.start(supervisor.run)
            try:
                yield client
            finally:
                await supervisor.aclose()
    except BaseException as error:
        escalated = supervisor._escalation
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
