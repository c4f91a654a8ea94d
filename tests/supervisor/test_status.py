"""Health as a /health endpoint reports it, computed from server states."""

from __future__ import annotations

import json

import pytest

import mcpvisor as mv

S = mv.ServerState


def server(name: str, state: S, **kwargs: object) -> mv.ServerStatus:
    fields: dict[str, object] = {
        "since": 1.0,
        "restarts": 0,
        "last_error": None,
        "required": False,
        "group": None,
        "transport": "stdio",
    }
    fields.update(kwargs)
    return mv.ServerStatus(name=name, state=state, **fields)  # type: ignore[arg-type]


def status(*servers: mv.ServerStatus) -> mv.SupervisorStatus:
    return mv.SupervisorStatus(servers={s.name: s for s in servers}, at=5.0)


@pytest.mark.parametrize(
    ("servers", "health"),
    [
        ((server("a", S.ACTIVE), server("b", S.ACTIVE)), "healthy"),
        ((server("a", S.ACTIVE), server("b", S.STOPPED)), "healthy"),
        ((server("a", S.ACTIVE), server("b", S.STOPPED, wakeable=True)), "healthy"),
        ((server("a", S.ACTIVE), server("b", S.FAILED)), "degraded"),
        ((server("a", S.ACTIVE), server("b", S.DROPPED)), "degraded"),
        ((server("a", S.ACTIVE), server("b", S.STARTING)), "degraded"),
        ((server("a", S.FAILED, required=True), server("b", S.ACTIVE)), "unavailable"),
        ((server("a", S.STOPPED, required=True, wakeable=True), server("b", S.ACTIVE)), "healthy"),
        ((server("a", S.DROPPED), server("b", S.FAILED)), "unavailable"),
        ((server("a", S.ACTIVE), server("a~1", S.STARTING, isolated_of="a")), "healthy"),
    ],
)
def test_health(servers: tuple[mv.ServerStatus, ...], health: str) -> None:
    assert status(*servers).health == health


def test_to_dict_is_json_ready_and_lists_states() -> None:
    snapshot = status(
        server("a", S.ACTIVE, pid=42, tools=3),
        server("b", S.FAILED, last_error="the server process exited with code 1", restarts=2),
        server("c", S.DROPPED),
        server("a~1", S.ACTIVE, isolated_of="a"),
    )
    body = json.loads(json.dumps(snapshot.to_dict()))
    assert body["status"] == "degraded"
    assert (body["active"], body["failed"], body["dropped"]) == (["a"], ["b"], ["c"])
    assert body["servers"]["b"] == {
        "state": "failed",
        "since": 1.0,
        "restarts": 2,
        "last_error": "the server process exited with code 1",
        "required": False,
        "group": None,
        "transport": "stdio",
        "pid": None,
        "tools": 0,
        "in_state_for": 4.0,
    }
    assert body["servers"]["a~1"]["isolated_of"] == "a"
