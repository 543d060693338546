"""Which local stand-ins `up` starts: the SMTP sink only while notify sends to a loopback server
without TLS, listening where notify sends."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from ops import standins
from ops.errors import OpsError


def notify(host: str = "127.0.0.1", port: int = 1025, security: str = "none") -> SimpleNamespace:
    return SimpleNamespace(smtp_host=host, smtp_port=port, smtp_security=security)


def test_the_sink_listens_where_notify_sends(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SMTP_STANDIN_PORT", raising=False)
    sink = standins.smtp(notify(port=2525))
    assert sink is not None
    assert sink.module == "standins.smtp" and sink.url == "http://127.0.0.1:1080"
    assert sink.environ["SMTP_STANDIN_SMTP_PORT"] == "2525"
    assert "1080/messages" in standins.describe(sink) and ".run/mail" in standins.describe(sink)


def test_the_sink_api_port_follows_its_own_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMTP_STANDIN_PORT", "18080")
    sink = standins.smtp(notify(host="localhost"))
    assert sink is not None and sink.url == "http://127.0.0.1:18080"
    monkeypatch.setenv("SMTP_STANDIN_PORT", "not-a-port")
    with pytest.raises(OpsError, match="SMTP_STANDIN_PORT"):
        standins.smtp(notify())


@pytest.mark.parametrize("config", [notify(host="smtp.example.com"),
                                    notify(security="starttls"), notify(security="tls")])
def test_no_sink_for_a_real_smtp_server(config: SimpleNamespace) -> None:
    assert standins.smtp(config) is None
