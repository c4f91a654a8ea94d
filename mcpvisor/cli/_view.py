"""How supervision looks on a terminal: the status table, the event log, and event lines.

Rendering is pure: each function takes a status snapshot or an event and returns text or a
rich renderable; the commands decide when to draw.
"""

from __future__ import annotations

import json
import sys
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

import attrs
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

import mcpvisor as mv
from mcpvisor.cli._logging import redact

STATE_STYLES: Mapping[str, str] = {
    "starting": "yellow",
    "active": "bold green",
    "failed": "bold red",
    "dropped": "bold magenta",
    "stopped": "dim",
}


_REASONS: Mapping[str, str] = {
    "intensity": "restart budget spent",
    "start_failed": "start failed",
    "backoff": "backoff elapsed",
    "group_restart": "group restart",
}


def _state_name(state: object) -> str | None:
    if state is None:
        return None
    value = getattr(state, "value", state)
    return str(value)


def _seconds(value: float) -> str:
    if value < 60:
        return f"{value:.1f}s"
    minutes, seconds = divmod(int(value), 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def event_record(event: mv.LifecycleEvent | mv.EventsLost, t0: float) -> dict[str, Any]:
    """``event`` as a JSON-ready dict; ``t`` is seconds since ``t0`` on the trio clock."""
    if isinstance(event, mv.EventsLost):
        return {"type": "events_lost", "count": event.count}
    return {
        "type": "event",
        "t": round(event.at - t0, 3),
        "server": event.server,
        "kind": event.kind,
        "old": _state_name(event.old),
        "new": _state_name(event.new),
        "reason": event.reason,
        "attempt": event.attempt,
        "delay": None if event.delay is None else round(event.delay, 3),
        "cause": None if event.cause is None else redact(event.cause),
    }


def event_text(event: mv.LifecycleEvent | mv.EventsLost, t0: float) -> Text:
    """One log line for ``event``: when, which server, what changed and why."""
    if isinstance(event, mv.EventsLost):
        return Text(f"        ... {event.count} events not shown (display fell behind)", "dim")
    line = Text(no_wrap=True, overflow="ellipsis")
    line.append(f"{event.at - t0:7.1f}s ", style="dim")
    line.append(f"{event.server:<10} ", style="bold")
    if event.kind == "state":
        old, new = _state_name(event.old), _state_name(event.new)
        if old is not None:
            line.append(old, STATE_STYLES.get(old, ""))
            line.append(" -> ")
        line.append(new or "?", STATE_STYLES.get(new or "", ""))
    else:
        line.append(event.kind.replace("_", " "), "cyan")
    details = []
    if event.reason:
        details.append(_REASONS.get(event.reason, event.reason))
    if event.cause and event.cause != event.reason:
        details.append(redact(event.cause))
    if event.delay is not None:
        nth = f" #{event.attempt}" if event.attempt else ""
        details.append(f"restart{nth} in {event.delay:.1f}s")
    if details:
        line.append("  " + "; ".join(details), "dim" if event.kind == "state" else "")
    return line


def event_plain(event: mv.LifecycleEvent | mv.EventsLost, t0: float) -> str:
    """:func:`event_text` without styling, for logs and pipes."""
    return event_text(event, t0).plain


def scrub(node: Any) -> Any:
    """``node`` with every string in it (keys too) cleared of configured secrets."""
    if isinstance(node, str):
        return redact(node, any_url=False)
    if isinstance(node, Mapping):
        return {scrub(k): scrub(v) for k, v in node.items()}
    if isinstance(node, list | tuple):
        return [scrub(v) for v in node]
    return node


def dump_json(record: Mapping[str, Any], *, redacted: bool = True) -> None:
    """Write one JSON line to stdout and flush it, so a reader sees it at once.

    Strings are redacted first (before JSON escaping could hide a secret) unless
    ``redacted=False``, for data the user asked for, such as a tool's result.
    """
    data = scrub(record) if redacted else record
    sys.stdout.write(json.dumps(data, default=str) + "\n")
    sys.stdout.flush()


@attrs.define
class CallCounts:
    """Tool calls one server answered, failed, or lost to a crash."""

    ok: int = 0
    failed: int = 0
    interrupted: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"ok": self.ok, "failed": self.failed, "interrupted": self.interrupted}


class Board:
    """The state behind a live view: recent event lines and, optionally, call counters."""

    def __init__(self, *, t0: float, log_lines: int = 12, show_calls: bool = False) -> None:
        self.t0 = t0
        self.show_calls = show_calls
        self.calls: dict[str, CallCounts] = {}
        self.log: deque[Text] = deque(maxlen=log_lines)

    def add_event(self, event: mv.LifecycleEvent | mv.EventsLost) -> None:
        self.log.append(event_text(event, self.t0))

    def add_log(self, line: str) -> None:
        """A (redacted) log line, shown among the events while the view is live."""
        for part in line.splitlines() or [""]:
            text = Text.from_ansi(part, no_wrap=True, overflow="ellipsis")
            text.stylize("dim")
            self.log.append(text)

    def counts(self, server: str) -> CallCounts:
        return self.calls.setdefault(server, CallCounts())

    def render(
        self,
        status: mv.SupervisorStatus | None,
        *,
        title: str = "mcpvisor",
        pending: Iterable[str] = (),
    ) -> RenderableType:
        """The status table above the most recent event lines; before the supervisor has a
        status (during startup), each of ``pending`` is shown as starting."""
        table = Table(title=None, expand=True, box=None, header_style="bold", pad_edge=False)
        table.add_column("server", no_wrap=True)
        table.add_column("transport", no_wrap=True)
        table.add_column("state", no_wrap=True)
        table.add_column("pid", justify="right", no_wrap=True)
        table.add_column("restarts", justify="right", no_wrap=True)
        table.add_column("uptime", justify="right", no_wrap=True)
        if self.show_calls:
            table.add_column("calls ok", justify="right", no_wrap=True)
            table.add_column("failed", justify="right", no_wrap=True)
        table.add_column("last error", overflow="ellipsis", no_wrap=True, ratio=1)
        if status is None:
            for name in pending:
                cells: list[RenderableType] = [
                    Text(name, style="bold"),
                    "",
                    Text("starting", STATE_STYLES["starting"]),
                ]
                cells += ["-"] * (len(table.columns) - len(cells))
                table.add_row(*cells)
            header = Text.assemble((title, "bold"), "  ", ("starting", "yellow"))
            return self._frame(table, header)
        for name, server in status.servers.items():
            state = server.state.value
            active = server.state is mv.ServerState.ACTIVE
            row: list[RenderableType] = [
                Text(name, style="bold"),
                server.transport,
                Text(state, STATE_STYLES.get(state, "")),
                str(server.pid) if server.pid is not None else "-",
                str(server.restarts),
                _seconds(status.at - server.since) if active else "-",
            ]
            if self.show_calls:
                c = self.counts(name)
                row += [str(c.ok), str(c.failed + c.interrupted)]
            row.append(Text(redact(server.last_error or ""), style="red" if not active else "dim"))
            table.add_row(*row)
        health = status.health
        style = {"healthy": "green", "degraded": "yellow"}.get(health, "red")
        header = Text.assemble(
            (title, "bold"), "  ", (health, style), f"  t={status.at - self.t0:.1f}s"
        )
        return self._frame(table, header)

    def _frame(self, table: Table, header: Text) -> RenderableType:
        log: Iterable[Text] = self.log or [Text("(no events yet)", "dim")]
        return Group(
            Panel(table, title=header, title_align="left"),
            Panel(Group(*log), title="events", title_align="left"),
        )
