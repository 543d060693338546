"""The SMTP server (aiosmtpd) and what it received.

Recipients matching a `refuse` pattern get a permanent 550, those matching `defer` a transient
451, as a real server answers an unknown mailbox or a full one. Patterns are addresses or
`*@domain`, compared without case.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import itertools
import re
import uuid
import warnings
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import structlog
from aiosmtpd.smtp import SMTP, Envelope, Session

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Received:
    """One message as the sink received it: the envelope and the parsed message."""

    id: str
    sender: str
    recipients: tuple[str, ...]
    raw: bytes
    received_at: datetime
    message: EmailMessage = field(repr=False)
    mail_options: tuple[str, ...] = ()
    """The MAIL FROM parameters the client sent (`SMTPUTF8`, `BODY=8BITMIME`, `SIZE=...`)."""

    @property
    def subject(self) -> str:
        return str(self.message.get("Subject", ""))

    def part(self, content_type: str) -> str | None:
        """The body of the first `text/plain` or `text/html` part, decoded."""
        for part in self.message.walk():
            if part.get_content_type() == content_type and not part.is_multipart():
                content: str = part.get_content()
                return content
        return None

    @property
    def text(self) -> str | None:
        return self.part("text/plain")

    @property
    def html(self) -> str | None:
        return self.part("text/html")

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "from": self.sender, "to": list(self.recipients),
                "subject": self.subject, "receivedAt": self.received_at.isoformat(),
                "headers": {k: str(v) for k, v in self.message.items()},
                "text": self.text, "html": self.html}


def _patterns(values: Iterable[str]) -> list[re.Pattern[str]]:
    return [re.compile(re.escape(v.strip().lower()).replace(r"\*", ".*") + "$")
            for v in values if v.strip()]


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,  # noqa: N802
                          address: str, rcpt_options: list[str]) -> str:
        address_lower = address.lower()
        if any(p.match(address_lower) for p in self.sink.refuse):
            return f"550 5.1.1 <{address}>: recipient refused (no such mailbox)"
        if any(p.match(address_lower) for p in self.sink.defer):
            return f"451 4.2.1 <{address}>: mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session,  # noqa: N802
                          envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        received = self.sink.keep(str(envelope.mail_from), tuple(envelope.rcpt_tos), raw,
                                  tuple(envelope.mail_options))
        return f"250 2.0.0 Ok: queued as {received.id}"


class SmtpSink:
    """`await sink.start()` listens (port 0 picks one, see `sink.port`); `await sink.stop()`
    closes, and `start()` again listens on the same port: a server that went away and came back.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *,
                 directory: Path | None = None, refuse: Iterable[str] = (),
                 defer: Iterable[str] = (), keep: int = 1000,
                 authenticate: Callable[[str, str], bool] | None = None,
                 smtputf8: bool = True) -> None:
        self.host, self.port = host, port
        self.smtputf8 = smtputf8
        """Offer SMTPUTF8 (addresses beyond ASCII) to the sessions that start from now on."""
        self.directory = directory
        self.refuse = _patterns(refuse)
        self.defer = _patterns(defer)
        self.limit = keep
        self.authenticate = authenticate
        self.messages: list[Received] = []
        self._server: asyncio.Server | None = None
        self._sessions: weakref.WeakSet[SMTP] = weakref.WeakSet()
        self._ids = itertools.count(1)

    def set_rules(self, *, refuse: Iterable[str] = (), defer: Iterable[str] = ()) -> None:
        self.refuse, self.defer = _patterns(refuse), _patterns(defer)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._protocol, self.host, self.port,
                                                reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)

    def _protocol(self) -> SMTP:
        auth: dict[str, Any] = {}
        if self.authenticate is not None:
            check = self.authenticate

            def authenticator(server: SMTP, session: Session, envelope: Envelope,
                              mechanism: str, data: Any) -> Any:
                from aiosmtpd.smtp import AuthResult, LoginPassword  # noqa: PLC0415

                ok = isinstance(data, LoginPassword) and check(
                    data.login.decode(), data.password.decode())
                return AuthResult(success=ok, handled=False)

            auth = {"authenticator": authenticator, "auth_require_tls": False,
                    "auth_required": True}
        with warnings.catch_warnings():
            # Plain-text AUTH is what a local sink offers; aiosmtpd warns about it each session.
            warnings.simplefilter("ignore", UserWarning)
            protocol = SMTP(_Handler(self), hostname="smtp-sink.localhost",
                            ident="tourbook SMTP sink", enable_SMTPUTF8=self.smtputf8, **auth)
        self._sessions.add(protocol)
        return protocol

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            # Open sessions are dropped as a crashed server drops them.
            for session in list(self._sessions):
                if isinstance(session.transport, asyncio.Transport):
                    session.transport.abort()
            await self._server.wait_closed()
            self._server = None

    @property
    def running(self) -> bool:
        return self._server is not None

    def keep(self, sender: str, recipients: tuple[str, ...], raw: bytes,
             mail_options: tuple[str, ...] = ()) -> Received:
        message = email.message_from_bytes(raw, policy=email.policy.default)
        received = Received(
            id=f"{next(self._ids):06d}-{uuid.uuid4().hex[:8]}", sender=sender,
            recipients=recipients, raw=raw, received_at=datetime.now(UTC),
            message=message, mail_options=mail_options)
        self.messages.append(received)
        del self.messages[:-self.limit]
        if self.directory is not None:
            stamp = received.received_at.strftime("%Y%m%dT%H%M%S")
            (self.directory / f"{stamp}-{received.id}.eml").write_bytes(raw)
        log.info("smtp_sink_received", id=received.id, sender=sender,
                 recipients=list(recipients), subject=received.subject)
        return received

    def to(self, address: str) -> list[Received]:
        """The messages whose envelope names `address` (without case)."""
        wanted = address.lower()
        return [m for m in self.messages if wanted in (r.lower() for r in m.recipients)]

    def clear(self) -> None:
        self.messages.clear()
