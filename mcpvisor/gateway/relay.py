"""What downstream servers ask and say outside any one gateway request, relayed to its clients.

The supervisor's sessions are opened before any gateway client connects, and a 2025-era stdio
session cannot tell which request a server's question belongs to. So the gateway installs one
:class:`Relay` as the supervisor's own :class:`~mcpvisor.ClientHandlers`: downstream sessions
then advertise sampling, elicitation and roots, and whatever is not routed to a particular
gateway request (see :mod:`mcpvisor.gateway.asking`) or a particular connection (see
:mod:`mcpvisor.gateway.notices`) reaches the relay, which hands it to the gateway once there
is one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs
import mcp_types as types
import trio

from mcpvisor.specs import SupervisorSpec
from mcpvisor.specs.handlers import ClientHandlers, HandlerContext, ServerLog

if TYPE_CHECKING:
    from mcpvisor.gateway.server import Gateway


class Relay:
    """The supervisor-level handlers of a gateway, bound to it once it exists.

    Build it before the supervisor (:meth:`install` puts its handlers into the spec), then
    pass it to :class:`~mcpvisor.gateway.Gateway`, which :meth:`bind` s itself. Questions that
    arrive before then wait (within the handlers' timeout) for the gateway.
    """

    def __init__(self) -> None:
        self._gateway: Gateway | None = None
        self._bound = trio.Event()
        self._effective: dict[str, ClientHandlers] = {}
        self._default = ClientHandlers()

    def install(self, spec: SupervisorSpec) -> SupervisorSpec:
        """``spec`` with the relay's handlers under its own: a field the spec sets, or a
        capability it disables, wins. Install every spec the supervisor is given (also on
        reload), so the relay knows each server's effective handlers."""
        spec = attrs.evolve(spec, handlers=spec.handlers.over(self.handlers()))
        self._default = spec.handlers
        self._effective = {
            s.name: spec.handlers if s.handlers is None else s.handlers.over(spec.handlers)
            for s in spec.servers
        }
        return spec

    def answer_timeout(self, server: str) -> float:
        """How long ``server``'s questions may wait for an answer (its handlers' timeout)."""
        return self._effective.get(server, self._default).answer_timeout

    def relays_roots(self, server: str) -> bool:
        """Whether ``server``'s roots are the gateway client's (no config set its own)."""
        roots = self._effective.get(server, self._default).roots
        return getattr(roots, "__self__", None) is self

    def handlers(self) -> ClientHandlers:
        """Sampling, elicitation, roots and logging, each relayed to the gateway's clients."""
        return ClientHandlers(
            sampling=self._sampling,
            elicitation=self._elicitation,
            roots=self._roots,
            logging=self._log,
        )

    def bind(self, gateway: Gateway) -> None:
        """Relay to ``gateway`` from now on."""
        self._gateway = gateway
        self._bound.set()

    @property
    def gateway(self) -> Gateway | None:
        """The gateway relayed to, once bound."""
        return self._gateway

    async def _wait(self) -> Gateway:
        await self._bound.wait()
        assert self._gateway is not None
        return self._gateway

    async def _sampling(
        self, ctx: HandlerContext, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult | types.CreateMessageResultWithTools | types.ErrorData:
        gateway = await self._wait()
        result: Any = await gateway.asking.unrouted(ctx, "sampling", params)
        return result  # type: ignore[no-any-return]

    async def _elicitation(
        self, ctx: HandlerContext, params: types.ElicitRequestParams
    ) -> types.ElicitResult | types.ErrorData:
        gateway = await self._wait()
        result: Any = await gateway.asking.unrouted(ctx, "elicitation", params)
        return result  # type: ignore[no-any-return]

    async def _roots(self, ctx: HandlerContext) -> list[types.Root]:
        gateway = await self._wait()
        return await gateway.asking.roots(ctx)

    def _log(self, record: ServerLog) -> None:
        gateway = self._gateway
        if gateway is not None:
            gateway.notices.server_log(record)
