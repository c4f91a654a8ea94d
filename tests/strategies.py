"""Hypothesis strategies for valid specs, shared by every test package.

Each strategy yields only values the spec constructors accept, so tests can build on them
without filtering. Import as ``from tests.strategies import supervisor_specs``.
"""

from __future__ import annotations

import string
from typing import Any

from hypothesis import strategies as st

from mcpvisor.specs import (
    Backoff,
    HttpSpec,
    RestartPolicy,
    SseSpec,
    StdioSpec,
    SupervisorSpec,
    Timeouts,
)
from mcpvisor.specs.policy import RESTART_TYPES, STRATEGIES
from mcpvisor.specs.servers import PROTOCOL_ERAS

_NAME_CHARS = string.ascii_letters + string.digits + "_-"


def names() -> st.SearchStrategy[str]:
    """Valid server and group names: ``[A-Za-z0-9_-]+`` without ``__``, not ending in ``_``."""
    return st.text(_NAME_CHARS, min_size=1, max_size=12).filter(
        lambda s: "__" not in s and not s.endswith("_")
    )


def _seconds(*, min_value: float = 0.0, exclude_min: bool = False) -> st.SearchStrategy[float]:
    return st.floats(min_value=min_value, max_value=1e6, exclude_min=exclude_min, allow_nan=False)


def _positive() -> st.SearchStrategy[float]:
    return _seconds(exclude_min=True)


@st.composite
def backoffs(draw: st.DrawFn) -> Backoff:
    """Any valid :class:`Backoff`, including zero delays and a multiplier of exactly 1."""
    initial = draw(_seconds())
    return Backoff(
        initial=initial,
        max=draw(st.floats(min_value=initial, max_value=2e6, allow_nan=False)),
        multiplier=draw(st.floats(min_value=1.0, max_value=100.0)),
        jitter=draw(st.floats(min_value=0.0, max_value=1.0)),
    )


@st.composite
def restart_policies(draw: st.DrawFn) -> RestartPolicy:
    """Any valid :class:`RestartPolicy`."""
    return RestartPolicy(
        restart=draw(st.sampled_from(RESTART_TYPES)),
        max_restarts=draw(st.integers(min_value=0, max_value=1000)),
        within=draw(_positive()),
        backoff=draw(backoffs()),
        reset_after=draw(_seconds()),
    )


@st.composite
def timeouts(draw: st.DrawFn) -> Timeouts:
    """Any valid :class:`Timeouts`, probing on or off."""
    return Timeouts(
        connect=draw(_positive()),
        initialize=draw(_positive()),
        request=draw(_positive()),
        shutdown=draw(_positive()),
        probe_interval=draw(st.none() | _positive()),
        probe_timeout=draw(_positive()),
        probe_misses=draw(st.integers(min_value=1, max_value=100)),
    )


def _supervised(name: str, groups: list[str]) -> dict[str, st.SearchStrategy[Any]]:
    """Strategies for the fields every server spec shares, defaults included."""
    return {
        "name": st.just(name),
        "required": st.booleans(),
        "group": (st.none() | st.sampled_from(groups)) if groups else st.none(),
        "restart": st.just(RestartPolicy()) | restart_policies(),
        "timeouts": st.just(Timeouts()) | timeouts(),
        "start": st.sampled_from(["eager", "lazy"]),
        "idle_shutdown": st.none() | _positive(),
        "max_concurrency": st.integers(min_value=1, max_value=1000),
        "max_isolated": st.integers(min_value=1, max_value=100),
        "protocol": st.sampled_from(PROTOCOL_ERAS),
    }


def _string_maps() -> st.SearchStrategy[dict[str, str]]:
    return st.dictionaries(st.text(min_size=1, max_size=10), st.text(max_size=20), max_size=3)


@st.composite
def urls(draw: st.DrawFn) -> str:
    """http(s) URLs with a host, and sometimes a port, userinfo, path, query or ``${``."""
    scheme = draw(st.sampled_from(["http", "https"]))
    userinfo = draw(st.sampled_from(["", "user:pass@"]))
    host = draw(st.sampled_from(["localhost", "127.0.0.1", "mcp.example.com", "[::1]"]))
    port = draw(st.none() | st.integers(min_value=1, max_value=65535))
    path = draw(st.sampled_from(["", "/", "/mcp", "/sse", "/v1/${x}/sse/", "/a b"]))
    query = draw(st.sampled_from(["", "?token=abc", "?a=1&b"]))
    return f"{scheme}://{userinfo}{host}{'' if port is None else f':{port}'}{path}{query}"


def stdio_specs(
    name: st.SearchStrategy[str] | None = None, groups: list[str] | None = None
) -> st.SearchStrategy[StdioSpec]:
    """Valid :class:`StdioSpec` values; text fields are arbitrary, ``${`` and all."""
    return (names() if name is None else name).flatmap(
        lambda n: st.builds(
            StdioSpec,
            command=st.text(min_size=1, max_size=20).filter(lambda s: bool(s.strip())),
            args=st.lists(st.text(max_size=20), max_size=4),
            env=_string_maps(),
            cwd=st.none() | st.text(max_size=20),
            **_supervised(n, groups or []),
        )
    )


def http_specs(
    name: st.SearchStrategy[str] | None = None, groups: list[str] | None = None
) -> st.SearchStrategy[HttpSpec]:
    """Valid :class:`HttpSpec` values."""
    return (names() if name is None else name).flatmap(
        lambda n: st.builds(
            HttpSpec, url=urls(), headers=_string_maps(), **_supervised(n, groups or [])
        )
    )


def sse_specs(
    name: st.SearchStrategy[str] | None = None, groups: list[str] | None = None
) -> st.SearchStrategy[SseSpec]:
    """Valid :class:`SseSpec` values."""
    return (names() if name is None else name).flatmap(
        lambda n: st.builds(
            SseSpec, url=urls(), headers=_string_maps(), **_supervised(n, groups or [])
        )
    )


@st.composite
def supervisor_specs(draw: st.DrawFn, max_servers: int = 5) -> SupervisorSpec:
    """Valid :class:`SupervisorSpec` values: unique server names, declared groups, any
    mix of stdio, HTTP and SSE servers (never in-process: those cannot be serialized)."""
    groups = draw(st.dictionaries(names(), st.sampled_from(STRATEGIES), max_size=3))
    server_names = draw(st.lists(names(), max_size=max_servers, unique=True))
    group_names = list(groups)
    servers = [
        draw(
            st.one_of(
                stdio_specs(st.just(n), group_names),
                http_specs(st.just(n), group_names),
                sse_specs(st.just(n), group_names),
            )
        )
        for n in server_names
    ]
    return SupervisorSpec(servers, groups)
