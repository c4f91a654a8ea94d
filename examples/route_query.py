"""Route each query to the MCP server that can answer it, picked by name.

The AG2 ``run_mcp_query(query, server_name)`` pattern opens a fresh session to the chosen
server for every query and picks the server with keywords (or an LLM). Here the servers are
supervised once for the whole program: a query goes to an already running, already
initialized server through ``client.call_tool(server, tool, args)``, and a server that
crashed in between is restarted by the supervisor instead of failing the next query.

The "agent" is a keyword router, no LLM: it picks the server from the query's words, then a
tool of that server and its arguments. Run it with ``python examples/route_query.py``.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog
import trio

import mcpvisor as mv
from mcpvisor.demo import open_http_server, stdio_spec

ROUTES: dict[str, tuple[str, ...]] = {
    "weather": ("weather", "forecast", "rain", "sunny", "temperature"),
    "notes": ("add", "sum", "plus", "count", "words", "echo", "repeat"),
}
"""Keywords that send a query to a server; the first server whose keyword appears wins."""

QUERIES = (
    "What is the weather forecast for Oslo?",
    "Add 19 and 23",
    "Count the words in 'supervisors restart their children'",
    "Will there be rain in Lima?",
    "Please repeat 'let it crash'",
)


def route(query: str, default: str = "notes") -> str:
    """The server for ``query``: the first whose keywords the query mentions."""
    words = set(re.findall(r"[a-z]+", query.lower()))
    for server, keywords in ROUTES.items():
        if words.intersection(keywords):
            return server
    return default


def plan(server: str, query: str) -> tuple[str, dict[str, Any]]:
    """The tool of ``server`` to call for ``query``, and its arguments."""
    quoted = re.search(r"'([^']*)'", query)
    if server == "weather":
        places = re.findall(r"\b(?:for|in|at) ([A-Z][a-z]+)", query)
        return "forecast", {"city": places[-1] if places else "Paris"}
    numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", query)]
    if len(numbers) >= 2:
        return "add", {"a": numbers[0], "b": numbers[1]}
    text = quoted.group(1) if quoted else query
    if "count" in query.lower():
        return "word_count", {"text": text}
    return "echo", {"text": text}


async def run_mcp_query(client: Any, query: str, server_name: str | None = None) -> str:
    """Answer ``query`` with a tool of ``server_name`` (routed by keywords if None)."""
    server = server_name or route(query)
    tool, arguments = plan(server, query)
    result = await client.call_tool(server, tool, arguments)
    text = " ".join(getattr(block, "text", "") for block in result.content)
    return f"[{server}__{tool}] {text}"


async def main(queries: tuple[str, ...] = QUERIES) -> list[str]:
    """Supervise the two servers, answer every query, print and return the answers."""
    answers = []
    async with open_http_server("weather") as weather:
        spec = mv.SupervisorSpec(
            servers=[
                stdio_spec("notes", required=True),
                mv.HttpSpec(name="weather", url=weather.url, required=True),
            ]
        )
        async with mv.open_supervisor(spec) as client:
            for query in queries:
                answer = await run_mcp_query(client, query)
                print(f"{query}\n  -> {answer}")
                answers.append(answer)
    return answers


def quiet_logging() -> None:
    """mcpvisor logs through structlog and leaves configuring it to the host: warnings and
    above, to stderr."""
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )


if __name__ == "__main__":
    quiet_logging()
    trio.run(main)
