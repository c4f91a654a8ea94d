"""The CLI's logging masks secrets in every record, including third-party ones (httpx, the
SDK), and routes lines into the live view while one is drawn."""

from __future__ import annotations

import logging

import pytest
import structlog

from mcpvisor.cli import _logging
from mcpvisor.cli._logging import configure_logging, protect, route_logs
from mcpvisor.specs import HttpSpec

URL = "https://app:pw-SENTINEL-1@h.example/mcp?api_key=key-SENTINEL-2"
SPEC = HttpSpec(name="web", url=URL, headers={"Authorization": "Bearer tok-SENTINEL-3"})


@pytest.fixture(autouse=True)
def _fresh_redactors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_logging, "_redactors", [])


@pytest.mark.parametrize("json_output", [True, False])
def test_third_party_records_are_redacted(
    json_output: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("debug", json_output=json_output)
    protect(SPEC)
    logging.getLogger("httpx").info('HTTP Request: %s %s "%s"', "POST", URL, "HTTP/1.1 200 OK")
    logging.getLogger("mcp.client.streamable_http").debug(
        "Connecting to StreamableHTTP endpoint: %s", URL
    )
    try:
        raise RuntimeError("server said: token tok-SENTINEL-3 is invalid")
    except RuntimeError:
        logging.getLogger("some.library").exception("request failed for %s", URL)
    structlog.get_logger("mcpvisor").warning("echo", text="got key-SENTINEL-2 back")
    err = capsys.readouterr().err
    assert "HTTP Request: POST https://h.example/mcp?api_key=***" in err
    assert "Connecting to StreamableHTTP endpoint" in err
    assert "is invalid" in err and "got *** back" in err
    assert "SENTINEL" not in err


def test_unknown_urls_lose_their_credentials_too(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", json_output=True)
    logging.getLogger("httpx").info("HTTP Request: GET https://u:other-pw@x.example/?sig=abc")
    err = capsys.readouterr().err
    assert "other-pw" not in err and "sig=***" in err


def test_lines_go_to_the_live_view_while_it_is_drawn(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", json_output=True)
    protect(SPEC)
    seen: list[str] = []
    with route_logs(seen.append):
        logging.getLogger("httpx").info("during %s", "tok-SENTINEL-3")
        structlog.get_logger("mcpvisor").warning("during.structlog")
    logging.getLogger("httpx").info("after")
    err = capsys.readouterr().err
    assert len(seen) == 2 and "during ***" in seen[0] and "during.structlog" in seen[1]
    assert "during" not in err and "after" in err
