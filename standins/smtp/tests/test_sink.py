"""The sink receives real SMTP from aiosmtplib, refuses and defers as configured, comes back on
the same port after a stop, and serves what it received over HTTP."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import pytest
from aiohttp.test_utils import TestClient, TestServer

from common.config import load_config
from standins.smtp import SmtpSink
from standins.smtp.app import SINK, create_app
from standins.smtp.config import Config


def _message(to: str, subject: str = "Hello") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "tourbook <noreply@tourbook.example>"
    message["To"] = to
    message["Subject"] = subject
    message.set_content("plain body")
    message.add_alternative("<p>html body</p>", subtype="html")
    return message


async def test_receives_real_smtp_and_keeps_eml_files(tmp_path: Path) -> None:
    sink = SmtpSink(directory=tmp_path)
    await sink.start()
    try:
        await aiosmtplib.send(_message("ann@example.com", "Booking confirmed"),
                              hostname="127.0.0.1", port=sink.port)
    finally:
        await sink.stop()
    [received] = sink.to("ANN@example.com")
    assert received.sender == "noreply@tourbook.example"
    assert received.subject == "Booking confirmed"
    assert received.text is not None and received.text.strip() == "plain body"
    assert received.html is not None and "<p>html body</p>" in received.html
    [eml] = tmp_path.glob("*.eml")  # noqa: ASYNC240 - a test reading what the sink wrote
    assert b"Subject: Booking confirmed" in eml.read_bytes()


async def test_a_long_subject_folded_by_the_sender_reads_as_it_was_written() -> None:
    subject = "Your booking has changed: Saga walk 3fe47ee5 on Thursday 7 January 2027"
    sink = SmtpSink()
    await sink.start()
    try:
        # Longer than a header line: the sender folds it onto a line of its own.
        await aiosmtplib.send(_message("ann@example.com", subject), hostname="127.0.0.1",
                              port=sink.port)
    finally:
        await sink.stop()
    [received] = sink.to("ann@example.com")
    assert received.subject == subject
    assert received.to_json()["headers"]["Subject"] == subject


async def test_refused_recipient_is_a_permanent_error_and_deferred_a_transient_one() -> None:
    sink = SmtpSink(refuse=["nobody@example.com"], defer=["*@busy.example"])
    await sink.start()
    try:
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
            await aiosmtplib.send(_message("nobody@example.com"), hostname="127.0.0.1",
                                  port=sink.port)
        assert refused.value.recipients[0].code == 550
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as deferred:
            await aiosmtplib.send(_message("x@BUSY.example"), hostname="127.0.0.1",
                                  port=sink.port)
        assert deferred.value.recipients[0].code == 451
    finally:
        await sink.stop()
    assert sink.messages == []


async def test_a_stopped_sink_refuses_connections_and_comes_back_on_its_port() -> None:
    sink = SmtpSink()
    await sink.start()
    port = sink.port
    await sink.stop()
    with pytest.raises(aiosmtplib.SMTPConnectError):
        await aiosmtplib.send(_message("bo@example.com"), hostname="127.0.0.1", port=port)
    await sink.start()
    try:
        assert sink.port == port
        await aiosmtplib.send(_message("bo@example.com"), hostname="127.0.0.1", port=port)
    finally:
        await sink.stop()
    assert len(sink.to("bo@example.com")) == 1


async def test_authentication_when_configured() -> None:
    sink = SmtpSink(authenticate=lambda user, password: (user, password) == ("u", "p"))
    await sink.start()
    try:
        with pytest.raises(aiosmtplib.SMTPAuthenticationError):
            await aiosmtplib.send(_message("cy@example.com"), hostname="127.0.0.1",
                                  port=sink.port, username="u", password="wrong")
        await aiosmtplib.send(_message("cy@example.com"), hostname="127.0.0.1", port=sink.port,
                              username="u", password="p")
    finally:
        await sink.stop()
    assert len(sink.messages) == 1


async def test_http_api_lists_reads_and_clears(tmp_path: Path) -> None:
    config = load_config(Config, {"SMTP_STANDIN_SMTP_PORT": "0", "SMTP_STANDIN_PORT": "0",
                                  "SMTP_STANDIN_DIRECTORY": str(tmp_path)})
    app = create_app(config)
    async with TestClient(TestServer(app)) as client:
        port = app[SINK].port
        await aiosmtplib.send(_message("di@example.com", "One"), hostname="127.0.0.1", port=port)
        await aiosmtplib.send(_message("ed@example.com", "Two"), hostname="127.0.0.1", port=port)
        listed = await (await client.get("/messages", params={"to": "di@example.com"})).json()
        assert [m["subject"] for m in listed["items"]] == ["One"]
        one = listed["items"][0]
        assert one["to"] == ["di@example.com"] and "plain body" in one["text"]
        got = await client.get(f"/messages/{one['id']}/raw")
        assert got.content_type == "message/rfc822" and b"Subject: One" in await got.read()
        missing = await client.get("/messages/nope")
        assert missing.status == 404 and (await missing.json())["error"] == "MESSAGE_NOT_FOUND"
        assert (await client.delete("/messages")).status == 204
        assert (await (await client.get("/messages")).json())["total"] == 0
        health = await client.get("/health")
        assert health.status == 200


def test_refuses_production() -> None:
    with pytest.raises(Exception, match="refuses APP_ENV=production"):
        load_config(Config, {"APP_ENV": "production"})
