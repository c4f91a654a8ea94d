"""Real third-party servers from npm, installed once into a cache directory for the tests.

``npm_package(name, version)`` installs the package under ``$MCPVISOR_NPM_CACHE`` (default
``~/.cache/mcpvisor-tests/npm``) unless it is already there, and returns the path of its
entry point. The test is skipped, saying why, only when npm is missing or the registry cannot
be reached; any other install failure fails the test.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

EVERYTHING = ("@modelcontextprotocol/server-everything", "2026.8.31")
FILESYSTEM = ("@modelcontextprotocol/server-filesystem", "2026.8.31")

LOOPBACK = Path(__file__).parent / "loopback.cjs"
"""Preloaded into Node servers that listen on every interface: binds them to 127.0.0.1 and
prints ``PORT <n>`` on stderr once listening, so ephemeral ports work."""

_UNREACHABLE = ("ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ETIMEDOUT", "ENETUNREACH", "network")


def cache_dir() -> Path:
    default = Path.home() / ".cache" / "mcpvisor-tests" / "npm"
    return Path(os.environ.get("MCPVISOR_NPM_CACHE", default))


def npm_package(name: str, version: str) -> Path:
    """The entry point (``bin``) of npm package ``name@version``, installing it if needed."""
    root = cache_dir() / f"{name.replace('/', '+')}@{version}"
    package = root / "node_modules" / name
    manifest = package / "package.json"
    # Written after npm install succeeded: the package's own manifest lands early in an
    # install, before its dependencies, so it cannot say whether another process is done.
    installed = root / ".mcpvisor-installed"
    if not installed.exists():
        if shutil.which("npm") is None:
            pytest.skip("npm is not installed, so the real npm servers cannot be tested")
        root.mkdir(parents=True, exist_ok=True)
        # pytest-xdist workers may want the same package at once: one installs it, the others
        # wait for the lock and then find it installed.
        with (root.parent / f"{root.name}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not installed.exists():
                _install(root, name, version)
                installed.touch()
    data = json.loads(manifest.read_text())
    bin_field = data["bin"]
    entry = bin_field if isinstance(bin_field, str) else next(iter(bin_field.values()))
    return package / entry


def _install(root: Path, name: str, version: str) -> None:
    done = subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(root), f"{name}@{version}"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        if any(word in done.stderr for word in _UNREACHABLE):
            pytest.skip(f"the npm registry is unreachable: {done.stderr.strip()[-300:]}")
        raise AssertionError(f"npm install {name}@{version} failed:\n{done.stderr[-2000:]}")


def node() -> str:
    found = shutil.which("node")
    if found is None:
        pytest.skip("node is not installed, so the real npm servers cannot be tested")
    return found
