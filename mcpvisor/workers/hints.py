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


def hint_for(lines: Iterable[bytes]) -> str | None:
    """The advice a server's last stderr lines call for, if they show a failure with a known
    remedy. Searched once, at exit, so a chatty server's stderr costs nothing per line."""
    for line in lines:
        lowered = line.lower()
        if any(marker in lowered for marker in _TLS_TRUST):
            return TLS_TRUST_HINT
    return None
