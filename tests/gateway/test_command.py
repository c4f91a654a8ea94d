"""``mcpvisor serve``'s own argument handling, without starting anything."""

from __future__ import annotations

from pathlib import Path

import pytest

import mcpvisor as mv
from mcpvisor.gateway.command import TOKEN_ENV, gateway_spec, parse_bind, read_token
from mcpvisor.specs import UsageError
from tests.gateway.support import raw


def test_parse_bind() -> None:
    assert parse_bind("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert parse_bind(":0") == ("127.0.0.1", 0)
    assert parse_bind("[::1]:9") == ("::1", 9)
    for bad in ("8080", "host:", "host:99999", "host:x"):
        with pytest.raises(UsageError, match="HOST:PORT"):
            parse_bind(bad)


def test_read_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    assert read_token(None) is None
    monkeypatch.setenv(TOKEN_ENV, "  from-env \n")
    assert read_token(None) == "from-env"
    token = tmp_path / "token"
    token.write_text("from-file\n")
    assert read_token(str(token)) == "from-file"
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(UsageError, match="empty"):
        read_token(str(tmp_path / "empty"))
    with pytest.raises(UsageError, match="cannot read"):
        read_token(str(tmp_path / "missing"))


def test_required_servers_become_readiness_not_escalation() -> None:
    spec = mv.SupervisorSpec(servers=[raw("a", required=True), raw("b", required=False)])
    served, required = gateway_spec(spec)
    assert required == ["a"]
    assert [s.required for s in served.servers] == [False, False]
