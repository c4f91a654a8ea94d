"""Acceptance against the real npm ``@modelcontextprotocol/server-filesystem`` started with no
directories: it serves exactly the directories the host gives as roots, and follows a change.
"""

from __future__ import annotations

from pathlib import Path

import trio

import mcpvisor as mv
from tests.s2c.npm import FILESYSTEM, node, npm_package
from tests.s2c.support import QUICK, text_of


def _allowed(result: object) -> str:
    return text_of(result)  # type: ignore[arg-type]


async def _until_allowed(client: mv.SupervisorClient, directory: Path) -> None:
    """The server asks for roots in the background (after initialized, after list_changed)."""
    with trio.fail_after(60):
        while str(directory) not in _allowed(  # noqa: ASYNC110 - the server announces nothing
            await client.call_tool("files", "list_allowed_directories", {})
        ):
            await trio.sleep(0.05)


async def test_roots_become_the_allowed_directories_and_follow_changes(tmp_path: Path) -> None:
    entry = npm_package(*FILESYSTEM)
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    (first / "hello.txt").write_text("from the first root")
    (second / "other.txt").write_text("from the second root")
    spec = mv.StdioSpec(
        name="files",
        command=node(),
        args=[str(entry)],
        protocol="legacy",
        restart=QUICK,
        timeouts=mv.Timeouts(connect=60, initialize=60, request=60),
    )
    handlers = mv.ClientHandlers(roots=[first.as_uri()])
    async with mv.open_supervisor(mv.SupervisorSpec([spec], handlers=handlers)) as client:
        await _until_allowed(client, first)
        listing = await client.call_tool("files", "list_directory", {"path": str(first)})
        assert "[FILE] hello.txt" in text_of(listing)
        outside = await client.call_tool("files", "list_directory", {"path": str(second)})
        assert outside.is_error

        await client.set_roots([second.as_uri()])
        await _until_allowed(client, second)
        allowed = _allowed(await client.call_tool("files", "list_allowed_directories", {}))
        assert str(first) not in allowed
        listing = await client.call_tool("files", "list_directory", {"path": str(second)})
        assert "[FILE] other.txt" in text_of(listing)


async def test_without_roots_it_cannot_operate(tmp_path: Path) -> None:
    entry = npm_package(*FILESYSTEM)
    spec = mv.StdioSpec(
        name="files",
        command=node(),
        args=[str(entry)],
        protocol="legacy",
        restart=mv.RestartPolicy(restart="temporary"),
        timeouts=mv.Timeouts(connect=60, initialize=60, request=60),
    )
    async with mv.open_supervisor(mv.SupervisorSpec([spec])) as client:
        result = await client.call_tool("files", "list_allowed_directories", {})
        # With no roots capability it has nothing to serve: no directory is allowed.
        assert text_of(result).strip() == "Allowed directories:"
        denied = await client.call_tool("files", "list_directory", {"path": str(tmp_path)})
        assert denied.is_error
