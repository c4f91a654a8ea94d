"""How a server is restarted and how long each step may take.

The field names and defaults follow OTP's supervisor (restart types, intensity) with the
capped, jittered exponential backoff that Akka and gRPC add on top.
"""

from __future__ import annotations

import math
from typing import Literal

import attrs

from mcpvisor.specs.errors import _Checker

RestartType = Literal["permanent", "transient", "temporary"]
"""OTP's restart types: ``permanent`` always restarts, ``transient`` only after an abnormal
exit, ``temporary`` never."""

Strategy = Literal["one_for_one", "one_for_all", "rest_for_one"]
"""OTP's strategies, declared per group: who else restarts when one member fails."""

RESTART_TYPES: tuple[RestartType, ...] = ("permanent", "transient", "temporary")
STRATEGIES: tuple[Strategy, ...] = ("one_for_one", "one_for_all", "rest_for_one")


def _finite(x: float) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


@attrs.frozen
class Backoff:
    """Capped exponential backoff with jitter.

    The n-th consecutive restart (n = 1, 2, ...) waits ``base_n * (1 - jitter * U)`` seconds,
    where ``base_n = min(max, initial * multiplier ** (n - 1))`` and U is uniform in [0, 1).
    ``jitter=1.0`` is AWS's "full jitter", which spreads reconnect storms best; ``0.0`` is
    deterministic. A delay never exceeds ``max``.
    """

    initial: float = 0.5
    max: float = 30.0
    multiplier: float = 2.0
    jitter: float = 0.5

    def __attrs_post_init__(self) -> None:
        c = _Checker()
        c.require(_finite(self.initial) and self.initial >= 0, "initial", "must be a number >= 0")
        c.require(_finite(self.max) and self.max >= 0, "max", "must be a number >= 0")
        c.require(
            _finite(self.multiplier) and self.multiplier >= 1, "multiplier", "must be a number >= 1"
        )
        c.require(
            _finite(self.jitter) and 0 <= self.jitter <= 1, "jitter", "must be between 0 and 1"
        )
        if not c.problems:
            c.require(self.max >= self.initial, "max", "must be >= initial")
        c.raise_if_any()

    def base(self, attempt: int) -> float:
        """The un-jittered delay before consecutive restart number ``attempt`` (1-based)."""
        if attempt < 1:
            raise ValueError("attempt is 1-based")
        if self.initial == 0:
            return 0.0
        if self.multiplier == 1:
            return float(self.initial)
        # Compare exponents instead of raising first: multiplier ** 10_000 overflows a float, and
        # so can a subnormal ``initial`` times a large power even below the cap.
        steps_to_cap = math.log(self.max, self.multiplier) - math.log(self.initial, self.multiplier)
        if attempt - 1 >= steps_to_cap:
            return float(self.max)
        try:
            return float(min(self.max, self.initial * float(self.multiplier) ** (attempt - 1)))
        except OverflowError:
            return float(self.max)

    def delay(self, attempt: int, u: float) -> float:
        """The jittered delay for ``attempt``, given a uniform draw ``u`` in [0, 1)."""
        if not 0 <= u < 1:
            raise ValueError("u must be in [0, 1)")
        return self.base(attempt) * (1 - self.jitter * u)


@attrs.frozen
class RestartPolicy:
    """When and how often a server is restarted.

    ``restart`` is the OTP restart type. More than ``max_restarts`` restarts within any
    ``within``-second window drops the server (failed initial starts count too, so a bogus
    command gives up instead of looping). ``reset_after`` seconds of continuous uptime reset
    the backoff counter to its first step.
    """

    restart: RestartType = "permanent"
    max_restarts: int = 5
    within: float = 60.0
    backoff: Backoff = attrs.field(factory=Backoff)
    reset_after: float = 30.0

    def __attrs_post_init__(self) -> None:
        c = _Checker()
        c.require(
            self.restart in RESTART_TYPES, "restart", f"must be one of {', '.join(RESTART_TYPES)}"
        )
        c.require(
            isinstance(self.max_restarts, int)
            and not isinstance(self.max_restarts, bool)
            and self.max_restarts >= 0,
            "max_restarts",
            "must be an integer >= 0",
        )
        c.require(_finite(self.within) and self.within > 0, "within", "must be a number > 0")
        c.require(isinstance(self.backoff, Backoff), "backoff", "must be a Backoff")
        c.require(
            _finite(self.reset_after) and self.reset_after >= 0,
            "reset_after",
            "must be a number >= 0",
        )
        c.raise_if_any()


@attrs.frozen
class Timeouts:
    """Bounds, in seconds, on each step of a server's life.

    The defaults are sized for real servers on a busy host:

    - ``connect=10``: spawning a process or opening a TCP connection; an ``npx`` server that
      fetches its package on first use is the slow case.
    - ``initialize=30``: the handshake. A Python ``MCPServer`` spends about a second importing
      before it answers; 30 s leaves room for a cold cache without hanging forever.
    - ``request=60``: one request, unless the caller's own deadline is shorter. Tools do real
      work (searches, builds), so this is generous.
    - ``shutdown=5``: stopping a server. The SDK closes stdin and waits 2 s, then SIGTERM and
      2 s more; 5 s covers both before mcpvisor kills the process group.
    - ``probe_interval=15`` / ``probe_timeout=5``: an idle server is pinged every 15 s and a
      ping slower than 5 s is a miss. ``probe_interval=None`` turns probing off.
    - ``probe_misses=3``: consecutive misses that count as the server being gone.
    """

    connect: float = 10.0
    initialize: float = 30.0
    request: float = 60.0
    shutdown: float = 5.0
    probe_interval: float | None = 15.0
    probe_timeout: float = 5.0
    probe_misses: int = 3

    def __attrs_post_init__(self) -> None:
        c = _Checker()
        for field in ("connect", "initialize", "request", "shutdown", "probe_timeout"):
            value = getattr(self, field)
            c.require(_finite(value) and value > 0, field, "must be a number > 0")
        c.require(
            self.probe_interval is None
            or (_finite(self.probe_interval) and self.probe_interval > 0),
            "probe_interval",
            "must be a number > 0, or null to disable probing",
        )
        c.require(
            isinstance(self.probe_misses, int)
            and not isinstance(self.probe_misses, bool)
            and self.probe_misses >= 1,
            "probe_misses",
            "must be an integer >= 1",
        )
        c.raise_if_any()
