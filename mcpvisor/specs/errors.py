"""Typed errors for bad supervision input.

Every problem carries a dotted path (``mcpServers.github.restart.backoff.jitter``) so that a
user can find the mistake in their file, and a message that never repeats a configured value:
values may be secrets.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs


@attrs.frozen
class Problem:
    """One thing wrong with a spec or a config file, at ``path``."""

    path: str
    message: str

    def prefixed(self, prefix: str) -> Problem:
        """The same problem seen from an enclosing object at ``prefix``."""
        if not prefix:
            return self
        return Problem(f"{prefix}.{self.path}" if self.path else prefix, self.message)

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class MCPVisorError(Exception):
    """The base of every error mcpvisor raises on purpose; catch it to catch them all."""


class UsageError(MCPVisorError, ValueError):
    """A caller passed something mcpvisor cannot use: a bad argument, option or parameter.

    ``parameter`` names what was wrong (``"arguments"``, ``"timeout"``, ``"buffer"``...) and
    ``server`` the server the call was for, when there was one. Only the caller that made the
    mistake sees it: nothing was sent and no session was touched. The message never repeats
    the offending value, which may hold a secret.
    """

    def __init__(self, parameter: str, message: str, *, server: str | None = None) -> None:
        self.parameter = parameter
        self.server = server
        self.message = message
        where = f"{server}: " if server else ""
        super().__init__(f"{where}{parameter}: {message}")

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.parameter, self.message), {"server": self.server})


class ConfigError(MCPVisorError, ValueError):
    """A spec or config that cannot be supervised; lists every problem found, not just the first.

    ``problems`` holds each :class:`Problem` with its path. The message is safe to log: it
    names paths and fields, never the values of environment variables or headers.
    """

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        if not self.problems:
            raise ValueError("ConfigError needs at least one problem")
        super().__init__(self._render())

    def __reduce__(self) -> tuple[type[ConfigError], tuple[tuple[Problem, ...]]]:
        # The default would rebuild from the rendered message, one "problem" per character.
        return (type(self), (self.problems,))

    def _render(self) -> str:
        if len(self.problems) == 1:
            return str(self.problems[0])
        lines = [f"{len(self.problems)} problems:"]
        lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)

    @property
    def paths(self) -> tuple[str, ...]:
        """The path of every problem, in the order found."""
        return tuple(p.path for p in self.problems)

    def prefixed(self, prefix: str) -> ConfigError:
        """The same error, with every path rooted at ``prefix``."""
        return ConfigError(p.prefixed(prefix) for p in self.problems)


class _Checker:
    """Collects problems during validation so that one error can report all of them."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def require(self, ok: bool, path: str, message: str) -> None:
        if not ok:
            self.problems.append(Problem(path, message))

    def absorb(self, error: ConfigError, prefix: str = "") -> None:
        self.problems.extend(p.prefixed(prefix) for p in error.problems)

    def raise_if_any(self, prefix: str = "") -> None:
        if self.problems:
            raise ConfigError(p.prefixed(prefix) for p in self.problems)
