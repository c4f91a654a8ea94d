"""The Redactor masks each credential component of a spec, by the documented length rules."""

from __future__ import annotations

import base64

import pytest

from mcpvisor.specs import HttpSpec, StdioSpec, SupervisorSpec
from mcpvisor.specs.config import dump_config, load_config
from mcpvisor.specs.secrets import MASK, Redactor, header_parts, maskable, redact_urls, url_parts


def test_the_token_after_an_auth_scheme_is_masked_on_its_own() -> None:
    spec = HttpSpec(name="a", url="https://h/mcp", headers={"Authorization": "Bearer abc123token"})
    redact = Redactor(spec)
    assert redact("invalid token abc123token") == "invalid token ***"
    assert redact("header was 'Bearer abc123token'") == "header was '***'"


def test_basic_credentials_are_masked_encoded_and_decoded() -> None:
    token = base64.b64encode(b"alice:s3cret-pass").decode()
    redact = Redactor(
        HttpSpec(name="a", url="https://h/", headers={"Authorization": f"Basic {token}"})
    )
    assert redact(f"{token} alice:s3cret-pass s3cret-pass") == "*** *** ***"


def test_url_userinfo_query_values_and_their_encodings_are_masked() -> None:
    url = "https://bob:p%40ssw0rd!@h.example/mcp?key=a%2Bb%2Bc%2Bd&limit=25"
    redact = Redactor(HttpSpec(name="a", url=url))
    assert redact(f"GET {url} failed") == "GET https://h.example/mcp?key=***&limit=*** failed"
    assert redact("password p@ssw0rd! and p%40ssw0rd!") == "password *** and ***"
    assert redact("key a+b+c+d or a%2Bb%2Bc%2Bd") == "key *** or ***"
    basic = base64.b64encode(b"bob:p@ssw0rd!").decode()
    assert redact(f"Authorization: Basic {basic}") == "Authorization: Basic ***"
    assert {"bob", "p@ssw0rd!", "a+b+c+d", "25"} <= url_parts(url)


def test_header_key_value_lists_give_each_value() -> None:
    parts = header_parts('Digest username="carol", response="6629fae49393a053"')
    assert {"carol", "6629fae49393a053"} <= parts
    assert "Digest" not in parts


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("pin 4821 rejected", "pin *** rejected"),
        ("port 14821 is free", "port 14821 is free"),  # inside a number: not the same word
        ("pin=4821;", "pin=***;"),
    ],
)
def test_short_values_are_masked_as_whole_words(text: str, expected: str) -> None:
    assert Redactor(StdioSpec(name="a", command="x", env={"PIN": "4821"}))(text) == expected


def test_long_values_are_masked_even_inside_other_text() -> None:
    redact = Redactor(StdioSpec(name="a", command="x", env={"KEY": "longsecret"}))
    assert redact("xxlongsecretyy") == f"xx{MASK}yy"


def test_values_that_cannot_be_credentials_are_left_alone() -> None:
    assert not maskable("abc")
    assert not maskable("true")
    assert maskable("abcd")
    redact = Redactor(StdioSpec(name="a", command="x", env={"A": "on", "B": "true", "C": "xyz"}))
    assert redact("on true xyz") == "on true xyz"


def test_expanded_values_are_secrets_wherever_they_land() -> None:
    spec = load_config(
        {
            "mcpServers": {
                "db": {
                    "command": "${BIN}/server",
                    "args": ["postgresql://app:${DB_PASSWORD}@host/db", "--api-key", "${KEY}"],
                    "cwd": "${WORK}",
                },
                "web": {"url": "https://h/${PATH_TOKEN}/mcp"},
            }
        },
        environ={
            "BIN": "/opt/tools-bin",
            "DB_PASSWORD": "pw-expanded",
            "KEY": "key-expanded",
            "WORK": "/srv/workdir",
            "PATH_TOKEN": "path-token-expanded",
        },
    )
    db, web = spec["db"], spec["web"]
    assert db.secrets == {"/opt/tools-bin", "pw-expanded", "key-expanded", "/srv/workdir"}
    assert web.secrets == {"path-token-expanded"}
    text = repr(spec)
    for secret in ("tools-bin", "pw-expanded", "key-expanded", "workdir", "path-token-expanded"):
        assert secret not in text
    assert "'postgresql://app:***@host/db', '--api-key', '***'" in text
    assert Redactor(db)("auth failed for app:pw-expanded in /srv/workdir") == (
        "auth failed for app:*** in ***"
    )
    # Secrets are not configuration: equality and dumps ignore them.
    assert db == StdioSpec(
        name="db",
        command="/opt/tools-bin/server",
        args=["postgresql://app:pw-expanded@host/db", "--api-key", "key-expanded"],
        cwd="/srv/workdir",
    )
    assert "secrets" not in dump_config(spec)["mcpServers"]["db"]


def test_a_secret_with_quotes_is_masked_in_the_repr() -> None:
    spec = StdioSpec(name="a", command="x", args=["it's-a-secret"], secrets={"it's-a-secret"})
    assert "secret" not in repr(spec)


def test_a_supervisor_redactor_covers_every_server() -> None:
    spec = SupervisorSpec(
        [
            StdioSpec(name="a", command="x", env={"K": "alpha-secret"}),
            HttpSpec(name="b", url="https://h/?t=beta-secret"),
        ]
    )
    assert Redactor(spec)("alpha-secret beta-secret") == "*** ***"
    assert "alpha" not in repr(Redactor(spec))
    assert "beta" not in repr(Redactor(spec))


def test_redact_urls_masks_any_url_credentials() -> None:
    text = 'HTTP Request: POST https://u:pw@h.example/mcp?token=zz "HTTP/1.1 200 OK"'
    assert (
        redact_urls(text) == 'HTTP Request: POST https://h.example/mcp?token=*** "HTTP/1.1 200 OK"'
    )
    assert redact_urls("see https://docs.example/x") == "see https://docs.example/x"


def test_plain_header_values_are_secrets_only_whole() -> None:
    spec = HttpSpec(
        name="a",
        url="https://h/mcp",
        headers={"Accept": "application/json, text/event-stream", "Cookie": "sid=abcdef12; x=1"},
    )
    redact = Redactor(spec)
    assert redact("expected application/json") == "expected application/json"
    assert redact("session abcdef12 expired") == "session *** expired"
    assert redact("sent application/json, text/event-stream") == "sent ***"
