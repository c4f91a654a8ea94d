"""Finding a stdio server's command as its own child would, whichever launcher starts it."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest
import trio
from worker_helpers import FAST, running

import mcpvisor.workers.spawn as spawn
from mcpvisor.specs import StdioSpec
from mcpvisor.workers import Envelope, StartError, run_worker

PYTHON = os.path.realpath(sys.executable)


def executable(path: Path, text: str = "#!/bin/sh\n", mode: int = 0o755) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def test_a_bare_name_is_found_on_the_childs_path_not_the_hosts(tmp_path: Path) -> None:
    mine = executable(tmp_path / "only-here")
    assert spawn._resolve("only-here", {"PATH": f"/nonexistent:{tmp_path}"}, None) == str(mine)
    with pytest.raises(FileNotFoundError):
        spawn._resolve("only-here", {"PATH": "/nonexistent"}, None)


def test_relative_names_and_path_entries_start_from_the_childs_directory(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    tool = executable(tmp_path / "bin" / "tool")
    assert spawn._resolve("bin/tool", {}, str(tmp_path)) == str(tool)
    assert spawn._resolve("tool", {"PATH": "bin"}, str(tmp_path)) == str(tool)


def test_a_file_that_is_not_executable_is_refused_as_popen_would(tmp_path: Path) -> None:
    executable(tmp_path / "plain", mode=0o644)
    with pytest.raises(PermissionError):
        spawn._resolve("plain", {"PATH": str(tmp_path)}, None)
    with pytest.raises(PermissionError):
        spawn._resolve(str(tmp_path / "plain"), {}, None)


def test_a_missing_directory_is_left_to_popen_to_name(tmp_path: Path) -> None:
    missing = str(tmp_path / "gone")
    assert spawn._resolve("anything", {}, missing) == "anything"


@pytest.fixture(params=["setpriv", "forker"])
def launcher(request: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test runs with util-linux's setpriv (where present) and with the preexec fallback."""
    if request.param == "forker":
        monkeypatch.setattr(spawn, "_setpriv", lambda: None)
    elif spawn._setpriv() is None:
        pytest.skip("util-linux's setpriv with --pdeathsig is not installed")
    return str(request.param)


async def test_a_server_named_on_its_own_path_serves_calls(
    tmp_path: Path, raw_server: Path, launcher: str, procs: Any
) -> None:
    (tmp_path / "python-here").symlink_to(sys.executable)
    spec = StdioSpec(
        name="pathy",
        command="python-here",
        args=(str(raw_server),),
        env={"PATH": str(tmp_path)},
        timeouts=FAST,
    )
    async with running(spec) as worker:
        # The launcher exec'd the server itself: the pid is the server's, not a wrapper's.
        assert os.readlink(f"/proc/{worker.pid}/exe") == PYTHON
        result = await worker.call("call_tool", name="echo", arguments={"text": "hi"})
    assert "hi" in str(result)


async def test_a_command_that_cannot_run_is_a_config_start_error(
    tmp_path: Path, launcher: str
) -> None:
    _send, receive = trio.open_memory_channel[Envelope](1)
    executable(tmp_path / "plain", mode=0o644)
    spec = StdioSpec(name="stuck", command="plain", env={"PATH": str(tmp_path)}, timeouts=FAST)
    with pytest.raises(StartError) as caught:
        await run_worker(spec, receive)
    assert caught.value.kind == "config"
    assert caught.value.server == "stuck"
