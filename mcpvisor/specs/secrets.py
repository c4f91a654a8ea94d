"""Keeping configured secrets out of everything mcpvisor prints, raises or publishes.

A server's secrets are what its spec was configured with: env values, header values and URL
credentials. Server output (stderr lines, error messages, start failures) passes through the
server's :class:`Redactor` before it reaches a log, an event, an error or the status.
"""

from __future__ import annotations

from mcpvisor.specs.servers import HttpSpec, ServerSpec, SseSpec, StdioSpec, redact_url


class Redactor:
    """Removes configured secrets (env and header values, URL credentials) from text."""

    def __init__(self, spec: ServerSpec) -> None:
        secrets: list[str] = []
        self._url: tuple[str, str] | None = None
        if isinstance(spec, StdioSpec):
            secrets += spec.env.values()
        if isinstance(spec, HttpSpec | SseSpec):
            secrets += spec.headers.values()
            self._url = (spec.url, redact_url(spec.url))
        # Short values would mangle ordinary words; they are not credentials anyway.
        self._secrets = sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        if self._url is not None:
            text = text.replace(self._url[0], self._url[1])
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text
