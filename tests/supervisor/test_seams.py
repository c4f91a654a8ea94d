"""The seams other parts build on: the typed handle, the narrow runtime interface, hooks,
catalogs, contexts, and typed caller mistakes."""

from __future__ import annotations

import ast
import math
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError

import mcpvisor as mv
from mcpvisor.specs import qualify, split_qualified
from tests.strategies import names
from tests.supervisor.fakes import CALLER, FakeServer
from tests.supervisor.support import QUICK, state_is, until

REPO = Path(__file__).resolve().parents[2]
SUPERVISOR = REPO / "mcpvisor" / "supervisor"


def spec_of(*fakes: FakeServer, **kwargs: Any) -> mv.SupervisorSpec:
    return mv.SupervisorSpec(servers=[f.spec(restart=QUICK, **kwargs) for f in fakes])


def text_of(result: Any) -> str:
    return str(result.content[0].text)


# ---- the typed handle and the seam ------------------------------------------------------------


def test_mypy_strict_sees_the_handle_type(tmp_path: Path) -> None:
    user = tmp_path / "user_code.py"
    user.write_text(
        "import trio\n"
        "import mcpvisor as mv\n\n"
        "async def main(spec: mv.SupervisorSpec) -> None:\n"
        "    async with mv.open_supervisor(spec) as client:\n"
        "        reveal_type(client)\n"
        "    async with trio.open_nursery() as nursery:\n"
        "        started = await nursery.start(mv.Supervisor(spec).run)\n"
        "        reveal_type(mv.Supervisor(spec).run)\n"
        "        del started\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", str(user)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    revealed = [line for line in done.stdout.splitlines() if "Revealed type" in line]
    assert len(revealed) == 2, done.stdout + done.stderr
    assert '"mcpvisor.supervisor.client.SupervisorClient"' in revealed[0]
    assert "TaskStatus[mcpvisor.supervisor.client.SupervisorClient]" in revealed[1]
    assert "error:" not in done.stdout, done.stdout


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_the_handle_knows_the_runtime_only_through_the_interface() -> None:
    for module in ("client.py", "interface.py"):
        assert "mcpvisor.supervisor.runtime" not in _imports(SUPERVISOR / module), module
    tree = ast.parse((SUPERVISOR / "client.py").read_text())
    private = [
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "_runtime"
        and node.attr.startswith("_")
    ]
    assert private == []


# ---- hooks ----------------------------------------------------------------------------------


class Recorder(mv.Hooks):
    def __init__(self) -> None:
        self.calls: list[tuple[str, mv.RequestCall, dict[str, Any]]] = []
        self.events: list[mv.LifecycleEvent] = []
        self.catalogs: list[tuple[str, mv.Catalog, frozenset[str]]] = []
        self.lost: list[int] = []
        self.tasks: list[object] = []

    def _note(self, kind: str, call: mv.RequestCall) -> None:
        snapshot = {
            "attempt": call.attempt,
            "outcome": call.outcome,
            "duration": call.duration,
            "waited": call.waited,
            "target": call.target,
            "method": call.method,
        }
        self.calls.append((kind, call, snapshot))
        self.tasks.append(trio.lowlevel.current_task())

    def request_started(self, call: mv.RequestCall) -> None:
        self._note("started", call)

    def request_attempt(self, call: mv.RequestCall) -> None:
        self._note("attempt", call)

    def request_finished(self, call: mv.RequestCall) -> None:
        self._note("finished", call)

    def state_changed(self, event: mv.LifecycleEvent) -> None:
        self.events.append(event)

    def catalog_changed(self, server: str, catalog: mv.Catalog, parts: frozenset[str]) -> None:
        self.catalogs.append((server, catalog, parts))  # type: ignore[arg-type]

    def events_lost(self, count: int) -> None:
        self.lost.append(count)

    def finished(self) -> list[mv.RequestCall]:
        return [call for kind, call, _ in self.calls if kind == "finished"]


async def test_request_hooks_see_each_request_in_the_callers_task() -> None:
    a = FakeServer("alpha")
    hooks = Recorder()
    async with mv.open_supervisor(spec_of(a), hooks=hooks) as client:
        await client.call_tool("alpha", "add", {"a": 1, "b": 2})
        assert [kind for kind, _, _ in hooks.calls] == ["started", "attempt", "finished"]
        assert set(hooks.tasks) == {trio.lowlevel.current_task()}
        (_, call, at_start), (_, _, at_attempt), (_, _, at_end) = hooks.calls
        assert at_start["attempt"] == 0 and at_start["outcome"] is None
        # What the request names is known from its start, for a span named after the tool.
        assert (at_start["method"], at_start["target"]) == ("tools/call", "add")
        assert at_attempt["attempt"] == 1 and at_attempt["outcome"] is None
        assert at_end["outcome"] == "ok" and at_end["duration"] is not None
        assert at_end["duration"] >= 0
        assert (call.server, call.op, call.method, call.target) == (
            "alpha",
            "call_tool",
            "tools/call",
            "add",
        )
        assert call.transport == "inprocess" and call.protocol_version
        assert call.error is None and not call.tool_error
        # A tool that answers with is_error is a result, marked for the hooks.
        result = await client.call_tool("alpha", "add", {"a": "not a number", "b": 2})
        assert result.is_error
        assert hooks.finished()[-1].outcome == "ok" and hooks.finished()[-1].tool_error


async def test_request_hooks_report_each_outcome(autojump_clock: object) -> None:
    a = FakeServer("alpha")
    hooks = Recorder()
    async with mv.open_supervisor(spec_of(a), hooks=hooks) as client:
        with pytest.raises(MCPError):
            await client.read_resource("alpha", "file:///nowhere")
        with pytest.raises(mv.RequestTimeoutError):
            await client.call_tool("alpha", "wait", {}, timeout=1)
        with pytest.raises(mv.UsageError):
            await client.call_tool("alpha", "add", {}, timeout=math.nan)
        with pytest.raises(mv.UsageError, match="alpha"):
            await client.request("alpha", "call_tool", {"name": "add", "bogus": 1})
        with pytest.raises(mv.UnknownServerError):
            await client.request("nowhere", "list_tools")
        # An unknown server is the error, even when the request is a mistake too.
        with pytest.raises(mv.UnknownServerError):
            await client.request("nowhere", "call_tool", {"bogus": 1})
        # A name the catalog does not list is counted too, as a caller's mistake.
        with pytest.raises(mv.UnknownToolError, match="did you mean 'add'"):
            await client.call_tool("alpha", "ad", {})
        with pytest.raises(mv.UnknownServerError, match="did you mean 'alpha'"):
            await client.call_tool("alpah", "add", {})
        with trio.move_on_after(1):
            await client.call_tool("alpha", "wait", {}, timeout=100)
        await client.stop("alpha")
        with pytest.raises(mv.ServerUnavailableError):
            await client.call_tool("alpha", "add", {"a": 1, "b": 1})
    outcomes = [(call.op, call.outcome) for call in hooks.finished()]
    assert outcomes == [
        ("read_resource", "error"),
        ("call_tool", "timeout"),
        ("call_tool", "usage"),
        ("call_tool", "usage"),
        ("list_tools", "unavailable"),
        ("call_tool", "unavailable"),
        ("call_tool", "usage"),
        ("call_tool", "unavailable"),
        ("call_tool", "cancelled"),
        ("call_tool", "unavailable"),
    ]
    usage = hooks.finished()[2]
    assert isinstance(usage.error, mv.UsageError) and usage.attempt == 0


async def test_request_hooks_count_the_retry_and_the_wait(autojump_clock: object) -> None:
    a = FakeServer("alpha")
    hooks = Recorder()
    async with (
        mv.open_supervisor(spec_of(a), hooks=hooks) as client,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(client.read_resource, "alpha", "memo://slow")
        with trio.fail_after(30):
            await a.read_seen.wait()
        a.read_seen = trio.Event()
        a.crash()
        with trio.fail_after(30):
            await a.read_seen.wait()
        assert a.reads == 2
        a.release.set()
    (call,) = hooks.finished()
    assert call.outcome == "ok" and call.attempt == 2
    assert call.waited > 0, "the retry waited for the restart"


async def test_state_hook_sees_every_event_subscribers_see(autojump_clock: object) -> None:
    a = FakeServer("alpha")
    hooks = Recorder()
    async with mv.open_supervisor(spec_of(a), hooks=hooks) as client:
        before = len(hooks.events)
        assert [e.new for e in hooks.events] == [mv.ServerState.STARTING, mv.ServerState.ACTIVE]
        seen: list[mv.LifecycleEvent] = []
        async with client.subscribe() as events:
            a.crash()
            with trio.fail_after(30):
                async for event in events:
                    assert isinstance(event, mv.LifecycleEvent)
                    seen.append(event)
                    if event.new is mv.ServerState.ACTIVE:
                        break
        assert hooks.events[before:] == seen
        assert [e.reason for e in seen] == ["crashed", "backoff", "ready"]


async def test_events_lost_hook_counts_what_a_slow_subscriber_missed(
    autojump_clock: object,
) -> None:
    a = FakeServer("alpha")
    hooks = Recorder()
    async with mv.open_supervisor(spec_of(a), hooks=hooks) as client:
        async with client.subscribe(buffer=1) as events:
            await client.stop("alpha")
            await client.revive("alpha")
            await until(client, state_is("alpha", mv.ServerState.ACTIVE))
            first = await events.__anext__()
        assert isinstance(first, mv.EventsLost)
        assert sum(hooks.lost) == first.count >= 2


async def test_a_raising_hook_fails_nothing() -> None:
    class Broken(mv.Hooks):
        def request_started(self, call: mv.RequestCall) -> None:
            raise RuntimeError("exporter down")

        def state_changed(self, event: mv.LifecycleEvent) -> None:
            raise RuntimeError("exporter down")

    a = FakeServer("alpha")
    hooks = Recorder()
    async with mv.open_supervisor(spec_of(a), hooks=[Broken(), hooks]) as client:
        result = await client.call_tool("alpha", "add", {"a": 2, "b": 2})
        assert result.structured_content == {"result": 4}
    assert [c.outcome for c in hooks.finished()] == ["ok"]


async def test_a_hook_may_read_the_status_mid_decision() -> None:
    class Reader(mv.Hooks):
        client: mv.SupervisorClient | None = None
        seen: ClassVar[list[tuple[str, ...]]] = []

        def state_changed(self, event: mv.LifecycleEvent) -> None:
            if self.client is not None:
                self.seen.append(tuple(self.client.status().servers))

    a, b = FakeServer("alpha"), FakeServer("beta")
    reader = Reader()
    async with mv.open_supervisor(spec_of(a, b), hooks=reader) as client:
        reader.client = client
        await client.remove_server("beta")
        assert list(client.status().servers) == ["alpha"]
        await client.stop("alpha")
        assert client.status().servers["alpha"].state is mv.ServerState.STOPPED
    assert reader.seen and all(names in (("alpha", "beta"), ("alpha",)) for names in reader.seen)


def test_hooks_must_be_hooks() -> None:
    with pytest.raises(TypeError):
        mv.Supervisor(mv.SupervisorSpec(servers=[]), hooks=[object()])  # type: ignore[list-item]


# ---- catalogs ---------------------------------------------------------------------------------


async def test_the_catalog_is_a_value_on_the_handle() -> None:
    a = FakeServer("alpha")
    hooks = Recorder()
    async with mv.open_supervisor(spec_of(a), hooks=hooks) as client:
        catalog = client.catalog("alpha")
        assert isinstance(catalog, mv.Catalog)
        assert {"add", "echo", "grow"} <= {t.name for t in catalog.tools}
        assert [t.uri_template for t in catalog.resource_templates] == ["memo://{topic}"]
        assert [str(r.uri) for r in catalog.resources] == ["memo://slow"]
        assert [p.name for p in catalog.prompts] == ["review"]
        assert catalog.capabilities is not None and catalog.protocol_version
        templates = await client.list_resource_templates()
        assert [(s, t.uri_template) for s, t in templates] == [("alpha", "memo://{topic}")]
        assert [(s, p.name) for s, p in await client.list_prompts()] == [("alpha", "review")]
        assert [(s, str(r.uri)) for s, r in await client.list_resources()] == [
            ("alpha", "memo://slow")
        ]
        assert client.status().servers["alpha"].tools == len(catalog.tools)
        with pytest.raises(mv.UnknownServerError):
            client.catalog("nowhere")
    # First the catalog at ready (every part), then only refetches (a modern session over a
    # transport also makes one after its listen acknowledgment, if something changed).
    first, *refetches = hooks.catalogs
    assert first[:2] == ("alpha", catalog)
    assert first[2] == {"tools", "resources", "resource_templates", "prompts"}
    assert all(server == "alpha" and parts for server, _, parts in refetches)


async def test_a_tools_list_change_replaces_the_catalog_and_is_announced() -> None:
    a = FakeServer("alpha")
    hooks = Recorder()
    async with mv.open_supervisor(spec_of(a), hooks=hooks) as client:
        before = client.catalog("alpha")
        async with client.subscribe() as events:
            await client.call_tool("alpha", "grow", {"name": "sprout"})
            with trio.fail_after(30):
                async for event in events:
                    assert isinstance(event, mv.LifecycleEvent)
                    if event.kind == "tools_changed":
                        break
        assert event.server == "alpha" and event.new is mv.ServerState.ACTIVE
        after = client.catalog("alpha")
        assert after is not before and "sprout" not in {t.name for t in before.tools}
        assert "sprout" in {t.name for t in after.tools}
        assert "alpha__sprout" in {t.qualified_name for t in await client.list_tools()}
        assert (await client.call_tool("alpha__sprout", {})).is_error is False
        assert any(
            "sprout" in {t.name for t in catalog.tools} and "tools" in parts
            for _, catalog, parts in hooks.catalogs
        )


# ---- contexts ---------------------------------------------------------------------------------


async def test_a_worker_woken_by_a_request_does_not_run_in_that_callers_context() -> None:
    # The session's lifespan runs in the worker's own context; the call, in its caller's.
    a = FakeServer("alpha")
    spec = mv.SupervisorSpec(servers=[a.spec(restart=QUICK, start="lazy")])
    async with mv.open_supervisor(spec) as client:
        assert client.status().servers["alpha"].state is mv.ServerState.STOPPED
        CALLER.set("A")
        assert text_of(await client.call_tool("alpha", "whose_context", {})) == "A"
        assert a.start_contexts == ["unset"]


async def test_restarts_do_not_run_in_a_callers_context(autojump_clock: object) -> None:
    a = FakeServer("alpha")
    async with mv.open_supervisor(spec_of(a)) as client:
        CALLER.set("B")
        await client.restart("alpha")
        await until(client, state_is("alpha", mv.ServerState.ACTIVE))
        assert a.start_contexts == ["unset", "unset"]
        assert text_of(await client.call_tool("alpha", "whose_context", {})) == "B"


async def test_each_request_is_served_in_its_own_callers_context() -> None:
    a = FakeServer("alpha")
    seen: dict[str, str] = {}

    async def caller(name: str) -> None:
        CALLER.set(name)
        await trio.lowlevel.checkpoint()
        seen[name] = text_of(await client.call_tool("alpha", "whose_context", {}))

    async with mv.open_supervisor(spec_of(a)) as client:
        async with trio.open_nursery() as nursery:
            for name in ("A", "B", "C"):
                nursery.start_soon(caller, name)
        assert seen == {"A": "A", "B": "B", "C": "C"}
        assert text_of(await client.call_tool("alpha", "whose_context", {})) == "unset"


# ---- requests: operations, meta, caller mistakes ----------------------------------------------


async def test_meta_is_forwarded_as_the_requests_meta() -> None:
    a = FakeServer("alpha")
    async with mv.open_supervisor(spec_of(a)) as client:
        result = await client.call_tool("alpha", "meta_of", {}, meta={"trace": "t-1"})
        assert text_of(result) == "t-1"


async def test_request_builds_operations_by_name() -> None:
    a = FakeServer("alpha")
    async with mv.open_supervisor(spec_of(a)) as client:
        page = await client.request("alpha", "list_resource_templates")
        assert [t.uri_template for t in page.resource_templates] == ["memo://{topic}"]
        read = await client.request("alpha", "read_resource", {"uri": "memo://x"})
        assert read.contents[0].text == "memo about x"


def _nested(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    ("call", "parameter"),
    [
        (lambda c: c.call_tool("alpha", "add", [1, 2]), "arguments"),
        (lambda c: c.call_tool("alpha", "add", {"a": "\ud83d"}), "arguments"),
        (lambda c: c.call_tool("alpha", "add", {1: 2}), "arguments"),
        (lambda c: c.call_tool("alpha", "add", {"a": object()}), "arguments"),
        (lambda c: c.call_tool("alpha", "add", {"a": _nested(500)}), "arguments"),
        (lambda c: c.call_tool("alpha", "add", {}, meta=[("k", "v")]), "meta"),
        (lambda c: c.get_prompt("alpha", "review", {"code": 1}), "arguments"),
        (lambda c: c.request("alpha", "teleport", {}), "op"),
        (lambda c: c.request("alpha", "read_resource", {}), "uri"),
        (lambda c: c.request("alpha", "read_resource", ["uri"]), "args"),
        (lambda c: c.request("alpha", "get_prompt", {"name": "r", "colour": 1}), "colour"),
        (lambda c: c.call_tool("alpha", "add", {}, timeout=math.nan), "timeout"),
        (lambda c: c.call_tool("alpha", "add", {}, timeout=-1), "timeout"),
        (lambda c: c.call_tool("alpha", "add", {}, timeout=0), "timeout"),
        (lambda c: c.call_tool("alpha", "add", {}, timeout=math.inf), "timeout"),
        (lambda c: c.call_tool("alpha", "add", {}, timeout="5"), "timeout"),
        (lambda c: c.read_resource("alpha", "memo://x", timeout=True), "timeout"),
    ],
)
async def test_caller_mistakes_are_usage_errors_naming_parameter_and_server(
    call: Any, parameter: str
) -> None:
    a = FakeServer("alpha")
    async with mv.open_supervisor(spec_of(a)) as client:
        with pytest.raises(mv.UsageError) as caught:
            await call(client)
        assert caught.value.parameter == parameter
        assert caught.value.server == "alpha"
        assert isinstance(caught.value, mv.MCPVisorError | ValueError)
        # Only the caller saw it: the session is the same one and still serves.
        assert (await client.call_tool("alpha", "add", {"a": 1, "b": 1})).structured_content
        assert a.sessions == 1 and client.status().servers["alpha"].restarts == 0


@pytest.mark.parametrize("buffer", [0, -1, 1.5])
async def test_subscribe_needs_a_buffer_of_at_least_one(buffer: Any) -> None:
    a = FakeServer("alpha")
    async with mv.open_supervisor(spec_of(a)) as client:
        with pytest.raises(mv.UsageError) as caught:
            async with client.subscribe(buffer=buffer):
                pass  # pragma: no cover
        assert caught.value.parameter == "buffer"


_TOOL_NAMES = st.text(
    st.characters(exclude_categories=("Cs", "Cc")), min_size=1, max_size=16
).filter(lambda s: s.strip() == s)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(server=names(), tool=_TOOL_NAMES)
def test_qualified_names_round_trip_through_the_handle(server: str, tool: str) -> None:
    assert split_qualified(qualify(server, tool)) == (server, tool)
    mcp = MCPServer(server)
    mcp.add_tool(lambda: tool, name=tool)
    mcp.add_tool(lambda: "decoy", name=f"_{tool}")
    spec = mv.SupervisorSpec(servers=[mv.InProcessSpec(name=server, server=mcp)])

    async def main() -> None:
        async with mv.open_supervisor(spec) as client:
            entries = {e.qualified_name: e for e in await client.list_tools()}
            entry = entries[qualify(server, tool)]
            assert (entry.server, entry.name) == (server, tool)
            result = await client.call_tool(qualify(server, tool), {})
            assert text_of(result) == tool

    trio.run(main)


async def test_a_tool_past_a_cut_listing_is_still_forwarded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mcpvisor.workers import listing

    monkeypatch.setattr(listing, "MAX_LIST_ITEMS", 3)
    a = FakeServer("alpha")
    async with mv.open_supervisor(spec_of(a)) as client:
        listed = {t.name for t in client.catalog("alpha").tools}
        assert len(listed) == 3 and "whose_context" not in listed
        # Not in the (cut) catalog, yet it exists: the server answers, not the handle.
        assert text_of(await client.call_tool("alpha", "whose_context", {})) == "unset"
