"""Keeping configured secrets out of everything mcpvisor prints, raises or publishes.

A server's secrets are what its spec was configured with, taken apart into every component
that can show up on its own in a server's reply or a library's log line:

- each ``env`` value and each header value, whole;
- the credentials of a header value: the token after an auth scheme (``Bearer``, ``Basic``,
  ``Token``...), the decoded ``user:password`` of ``Basic`` and its password, and each value of
  a ``k=v`` list (``Digest``, cookies);
- the URL's userinfo (user and password) and each query value, both as written and
  percent-decoded;
- every value that came from ``${VAR}`` expansion, wherever it landed (``args``, ``command``,
  ``cwd``, the url...): the spec's ``secrets``.

Server output (stderr lines, error messages, start failures) passes through the server's
:class:`Redactor` before it reaches a log, an event, an error or the status.

Which values are masked, exactly (:func:`maskable`): a secret of at least
:data:`MASK_ANYWHERE` characters is masked wherever it appears, even inside other text; one of
:data:`MASK_AS_WORD` to ``MASK_ANYWHERE - 1`` characters only where it stands as a whole word
(no letter or digit right before or after it), so that ``PORT=5432`` does not mangle
``15432``; shorter values, and the words in :data:`NOT_SECRET` (``true``, ``1``...), are never
masked, as they cannot be told apart from ordinary text and are not credentials.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from typing import Final
from urllib.parse import quote, unquote, urlsplit

from mcpvisor.specs.servers import (
    HttpSpec,
    ServerSpec,
    SseSpec,
    StdioSpec,
    SupervisorSpec,
    redact_url,
)

MASK: Final = "***"
"""What a masked secret is replaced with."""

MASK_ANYWHERE: Final = 8
"""Secrets this long or longer are masked wherever they appear."""

MASK_AS_WORD: Final = 4
"""Secrets this long (and shorter than :data:`MASK_ANYWHERE`) are masked as whole words."""

NOT_SECRET: Final = frozenset(
    {"true", "false", "yes", "no", "on", "off", "null", "none", "debug", "info", "warning"}
)
"""Values that configure, never authenticate: never masked (compared case-insensitively)."""

_AUTH_SCHEMES: Final = frozenset(
    {"bearer", "basic", "token", "digest", "apikey", "api-key", "key", "negotiate", "hmac"}
)
_URL: Final = re.compile(r"\b(?:https?|wss?)://[^\s'\"<>()\[\]{}]+")
_ANY_URL: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
_HEADER_PARTS: Final = re.compile(r"[\s,;]+")
_PAIR: Final = re.compile(r"([A-Za-z_][\w.-]*)=(.+)")


def maskable(secret: str) -> bool:
    """Whether :class:`Redactor` masks ``secret`` at all (see the module docstring)."""
    return len(secret) >= MASK_AS_WORD and secret.lower() not in NOT_SECRET


def header_parts(value: str) -> set[str]:
    """``value`` and the credentials inside it: ``Bearer t`` gives ``t``, ``Basic b64`` also
    the decoded ``user:password`` and its password, ``k=v; k2="v2"`` each value.

    A value with neither an auth scheme nor ``k=v`` pairs (``application/json``) is a secret
    only whole: its words are not taken apart, so they do not mask ordinary text.
    """
    parts = {value}
    words = [w for w in _HEADER_PARTS.split(value.strip()) if w]
    scheme = len(words) > 1 and words[0].lower() in _AUTH_SCHEMES
    for i, word in enumerate(words):
        if scheme and i == 0:
            continue
        pair = _PAIR.fullmatch(word)
        if pair is not None and pair.group(2).strip('="'):
            parts.add(pair.group(2).strip('"'))
        elif scheme:
            parts.add(word.strip('"'))
        if scheme and i == 1 and words[0].lower() == "basic":
            parts |= _basic_parts(word)
    return parts


def _basic_parts(token: str) -> set[str]:
    try:
        decoded = base64.b64decode(token, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return set()
    user, _, password = decoded.partition(":")
    return {decoded, user, password}


def url_parts(url: str) -> set[str]:
    """The credential components of ``url``: userinfo user and password (and the Basic
    token an HTTP client makes of them), each query value, each as written and
    percent-decoded (and re-encoded, as HTTP clients write them)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return set()
    raw: set[str] = set()
    basic: set[str] = set()
    userinfo, at, _ = parts.netloc.rpartition("@")
    if at:
        user, _, password = userinfo.partition(":")
        raw |= {user, password}
        # HTTP clients send userinfo as a Basic Authorization header, which servers echo.
        credentials = f"{unquote(user)}:{unquote(password)}".encode()
        basic.add(base64.b64encode(credentials).decode("ascii"))
    for pair in parts.query.split("&"):
        raw.add(pair.partition("=")[2])
    found: set[str] = set()
    for value in raw:
        decoded = unquote(value.replace("+", " "))
        found |= {value, unquote(value), decoded, quote(decoded, safe="")}
    return found | basic


def spec_secrets(spec: ServerSpec) -> set[str]:
    """Every secret component ``spec`` was configured with, masked or not (see
    :func:`maskable`)."""
    found: set[str] = set(spec.secrets)
    texts = list(spec.secrets)
    if isinstance(spec, StdioSpec):
        found |= set(spec.env.values())
        texts += spec.args
    for text in texts:
        for url in _ANY_URL.findall(text):
            found |= url_parts(url)
    if isinstance(spec, HttpSpec | SseSpec):
        found |= url_parts(spec.url)
        for value in spec.headers.values():
            found |= header_parts(value)
    return found


def redact_urls(text: str) -> str:
    """``text`` with the userinfo and query values of every URL in it masked, whoever
    configured them: for third-party log lines, which may name any URL."""
    return _URL.sub(
        lambda m: redact_url(m.group(0)) if _has_credentials(m.group(0)) else m.group(0), text
    )


def _has_credentials(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return "@" in parts.netloc or bool(parts.query)


class Redactor:
    """Masks configured secrets in text: ``redactor(text)`` (or ``redactor.redact(text)``).

    Built from one server's spec, a whole :class:`SupervisorSpec`, and/or extra ``secrets``.
    Each server URL is first shown as :func:`redact_url` gives it (host and path kept), then
    every secret component is replaced by :data:`MASK`, longest first, by the rules in the
    module docstring. A redactor with no secrets returns text unchanged at the cost of one
    check.
    """

    def __init__(
        self,
        spec: ServerSpec | SupervisorSpec | None = None,
        *,
        secrets: Iterable[str] = (),
    ) -> None:
        servers: tuple[ServerSpec, ...]
        if spec is None:
            servers = ()
        elif isinstance(spec, SupervisorSpec):
            servers = spec.servers
        else:
            servers = (spec,)
        found = set(secrets)
        urls: dict[str, str] = {}
        for server in servers:
            found |= spec_secrets(server)
            if isinstance(server, HttpSpec | SseSpec):
                shown = redact_url(server.url)
                if shown != server.url:
                    urls[server.url] = shown
        self._urls = sorted(urls.items(), key=lambda kv: len(kv[0]), reverse=True)
        kept = sorted((s for s in found if maskable(s)), key=len, reverse=True)
        anywhere = [re.escape(s) for s in kept if len(s) >= MASK_ANYWHERE]
        words = [re.escape(s) for s in kept if len(s) < MASK_ANYWHERE]
        alternatives = []
        if anywhere:
            alternatives.append("|".join(anywhere))
        if words:
            alternatives.append(r"(?<![A-Za-z0-9])(?:" + "|".join(words) + r")(?![A-Za-z0-9])")
        self._pattern = (
            re.compile("|".join(f"(?:{a})" for a in alternatives)) if alternatives else None
        )

    @property
    def active(self) -> bool:
        """Whether there is anything to mask."""
        return self._pattern is not None or bool(self._urls)

    def __call__(self, text: str) -> str:
        for url, shown in self._urls:
            text = text.replace(url, shown)
        if self._pattern is not None:
            text = self._pattern.sub(MASK, text)
        return text

    redact = __call__

    def __repr__(self) -> str:
        return "Redactor(<secrets hidden>)"


__all__ = [
    "MASK",
    "Redactor",
    "header_parts",
    "maskable",
    "redact_urls",
    "spec_secrets",
    "url_parts",
]
