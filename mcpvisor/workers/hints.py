"""What a stdio server's stderr says about why it died, as advice for the exit's cause.

A server that cannot start usually says why on stderr, which goes to the log; its exit is
only a code. Some failures have one well-known remedy on the host's side, so the cause names
it. The hint is a fixed text, never the server's own words, which may carry anything.
"""

from __future__ import annotations

from collections.abc import Iterable

HINT_LINES = 50
"""How many of a server's last stderr lines are searched when it exits: a Python traceback
with a chained exception puts the certificate error well before its last line."""

HINT_CHARS = 300
"""How much of each end of a long kept line is searched: a traceback's message starts its
line, a structured log line's message may come after a long prefix or before a long tail."""

_TLS_TRUST = (
    b"certificate verify failed",
    b"invalid peer certificate",
    b"unable to get local issuer certificate",
    b"unable_to_get_issuer_cert",
    b"self signed certificate in certificate chain",
    b"self-signed certificate in certificate chain",
    b"self_signed_cert_in_chain",
    b"unable to verify the first certificate",
    b"unable_to_verify_leaf_signature",
)
"""How Python's ssl, rustls (uv, uvx) and Node say a server's certificate was not trusted."""

TLS_TRUST_HINT = (
    "its stderr reported an untrusted TLS certificate: on a host behind a custom CA, pass "
    'the CA through the server\'s env ("SSL_CERT_FILE": "${SSL_CERT_FILE}" for Python and uv, '
    '"NODE_EXTRA_CA_CERTS" for Node); a stdio server sees only the variables its spec sets'
)


_NPM = (b"npm error ", b"npm err! ")
"""How npm starts each line of an error, today and before npm 10."""


def _npm(*codes: bytes) -> tuple[bytes, ...]:
    return tuple(prefix + b"code " + code for prefix in _NPM for code in codes)


_NOT_IN_REGISTRY = (
    *_npm(b"e404", b"etarget"),
    b"was not found in the package registry",
    b"because there is no version of",
)
"""How npm (``npx``) and uv (``uvx``) say the package or version asked for is not there."""

NOT_IN_REGISTRY_HINT = (
    "its stderr reported that the package it runs, or the version asked for, is not in the "
    "registry: check the package's name and version in the server's command and args (a "
    "private registry also needs its settings and credentials passed through the server's "
    "env: npm_config_registry, UV_INDEX_URL)"
)

_NETWORK = (
    *_npm(b"enotfound", b"eai_again", b"econnrefused", b"econnreset", b"etimedout"),
    *(prefix + b"network" for prefix in _NPM),
    b"error sending request for url",
    b"temporary failure in name resolution",
    b"getaddrinfo enotfound",
    b"getaddrinfo eai_again",
)
"""How npm, uv (reqwest) and name resolution say a connection could not reach its host."""

NETWORK_HINT = (
    "its stderr reported a failed network connection (the server's own, or its download: npx "
    "and uvx fetch the server when it starts): behind a proxy, pass it through the server's "
    'env ("HTTPS_PROXY": "${HTTPS_PROXY}"); a stdio server sees only the variables its spec '
    "sets. Without network access, install the server ahead of time and run it without the "
    "launcher"
)

_HINTS = (
    (_TLS_TRUST, TLS_TRUST_HINT),
    (_NOT_IN_REGISTRY, NOT_IN_REGISTRY_HINT),
    (_NETWORK, NETWORK_HINT),
)
"""Most specific first: npm reports an untrusted certificate as a network error too."""


def hint_for(lines: Iterable[bytes]) -> str | None:
    """The advice a server's last stderr lines call for, if they show a failure with a known
    remedy. Searched once, at exit, so a chatty server's stderr costs nothing per line."""
    lowered = [line.lower() for line in lines]
    for markers, hint in _HINTS:
        if any(marker in line for line in lowered for marker in markers):
            return hint
    return None
