"""``server__tool`` round-trips for every server name a config accepts, whatever the tool
name holds; the names that would make it ambiguous are the ones refused."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mcpvisor.specs import ConfigError, qualify, split_qualified
from mcpvisor.specs.config import load_config
from mcpvisor.specs.servers import name_problem

candidates = st.from_regex(r"[A-Za-z0-9_-]{1,12}", fullmatch=True)
tools = st.text(min_size=1, max_size=20)


@settings(deadline=None, max_examples=500)
@given(candidates, tools)
def test_every_accepted_name_round_trips(server: str, tool: str) -> None:
    if name_problem(server) is None:
        assert split_qualified(qualify(server, tool)) == (server, tool)
    else:
        # Refused names are exactly those that could not round-trip with some tool name.
        assert "__" in server or server.endswith("_")


@settings(deadline=None)
@given(candidates)
def test_the_config_loader_refuses_what_name_problem_refuses(server: str) -> None:
    problem = name_problem(server)
    try:
        spec = load_config({"mcpServers": {server: {"command": "x"}}})
    except ConfigError as error:
        assert problem is not None
        assert error.paths == (f"mcpServers.{server}",)
        assert problem in str(error)
    else:
        assert problem is None and spec.names == (server,)


def test_the_ambiguous_example_from_the_issue_is_refused() -> None:
    # "a_" + "ok" would read back as server "a", tool "_ok".
    assert name_problem("a_") is not None
    assert split_qualified(qualify("a", "_ok")) == ("a", "_ok")
    assert split_qualified("no-separator") is None
    assert split_qualified("__tool") is None
