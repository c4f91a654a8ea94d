"""``dump_config`` writes what ``load_config`` reads back: the same spec, for any spec."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given, settings
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
from mcpvisor.specs.config import dump_config, load_config
from tests.strategies import supervisor_specs

EXAMPLES = Path(__file__).parent.parent.parent / "examples"


@settings(max_examples=150, deadline=None)
@given(supervisor_specs())
def test_load_inverts_dump(spec: SupervisorSpec) -> None:
    assert load_config(dump_config(spec), environ={}) == spec


@settings(deadline=None)
@given(supervisor_specs(max_servers=3))
def test_dump_is_json(spec: SupervisorSpec) -> None:
    text = json.dumps(dump_config(spec))
    assert load_config(json.loads(text), environ={}) == spec


@given(st.text(min_size=1).filter(str.strip), st.sampled_from(["${HOME}", "$${X}", "${"]))
def test_strings_that_look_like_variables_survive(command: str, arg: str) -> None:
    spec = SupervisorSpec([StdioSpec(name="a", command=command, args=[arg])])
    assert load_config(dump_config(spec), environ={"HOME": "/wrong"}) == spec


def test_defaults_are_left_out() -> None:
    spec = SupervisorSpec(
        [
            StdioSpec(name="plain", command="npx"),
            HttpSpec(name="web", url="https://h/sse"),
            SseSpec(name="events", url="https://h/events", headers={"X": "1"}),
            StdioSpec(
                name="tuned",
                command="uvx",
                args=["srv"],
                env={"K": "v"},
                cwd="/srv",
                required=True,
                group="g",
                restart=RestartPolicy(max_restarts=2, backoff=Backoff(jitter=0.0)),
                timeouts=Timeouts(probe_interval=None),
                start="lazy",
                idle_shutdown=60.0,
            ),
        ],
        groups={"g": "rest_for_one"},
    )
    assert dump_config(spec) == {
        "mcpServers": {
            "plain": {"command": "npx"},
            "web": {"type": "http", "url": "https://h/sse"},
            "events": {"type": "sse", "url": "https://h/events", "headers": {"X": "1"}},
            "tuned": {
                "command": "uvx",
                "args": ["srv"],
                "env": {"K": "v"},
                "cwd": "/srv",
                "required": True,
                "group": "g",
                "restart": {"max_restarts": 2, "backoff": {"jitter": 0.0}},
                "timeouts": {"probe_interval": None},
                "start": "lazy",
                "idle_shutdown": 60.0,
            },
        },
        "mcpvisor": {"groups": {"g": "rest_for_one"}},
    }


def test_dump_keeps_secret_values_because_it_is_the_users_config() -> None:
    spec = SupervisorSpec([HttpSpec(name="web", url="https://h", headers={"A": "Bearer t"})])
    assert dump_config(spec)["mcpServers"]["web"]["headers"] == {"A": "Bearer t"}


def test_the_example_survives_a_round_trip_through_a_file(tmp_path: Path) -> None:
    environ = {"HOME": "/home/ada"}
    spec = load_config(EXAMPLES / "claude_desktop_config.json", environ=environ)
    path = tmp_path / "claude_desktop_config.json"
    path.write_text(json.dumps(dump_config(spec), indent=2))
    assert load_config(path, environ={}) == spec
