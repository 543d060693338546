"""E-mail over SMTP with aiosmtplib: one connection per message (plain, STARTTLS or implicit TLS,
AUTH when configured; SMTPUTF8 when an address needs it), every failure sorted by `classify`."""

from __future__ import annotations

import asyncio
import ssl
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid, parseaddr

import aiosmtplib
from email_validator import EmailNotValidError, validate_email

from notify.config import Config
from notify.failures import SendFailed
from notify.rendering import Email


def ascii_where_possible(address: str) -> str:
    """`address` with its domain in ASCII (IDNA); unchanged when its mailbox name is not ASCII,
    which only SMTPUTF8 carries."""
    try:
        checked = validate_email(address, check_deliverability=False)
    except EmailNotValidError:
        return address
    return checked.ascii_email or address


def _is_permanent(code: int) -> bool:
    return 500 <= code < 600


def classify(exc: BaseException) -> SendFailed:
    """Permanent, never tried again: the server refuses the recipient (5xx to RCPT) or the
    message (5xx to DATA). Everything else is transient and retried with the event: no
    connection, a timeout, a 4xx (mailbox busy, greylisting), and also a refused login or
    sender, which are ours to fix; once fixed, the retries (or a replay from the dead-letter
    queue) deliver."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        refusals = exc.recipients
        permanent = bool(refusals) and all(_is_permanent(r.code) for r in refusals)
        detail = "; ".join(f"{r.code} {r.message}" for r in refusals)
        return SendFailed(f"recipient refused: {detail}", permanent=permanent)
    if isinstance(exc, aiosmtplib.SMTPRecipientRefused | aiosmtplib.SMTPDataError):
        what = "recipient" if isinstance(exc, aiosmtplib.SMTPRecipientRefused) else "message"
        return SendFailed(f"{what} refused: {exc.code} {exc.message}",
                          permanent=_is_permanent(exc.code))
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return SendFailed(f"SMTP server answered {exc.code} {exc.message}", permanent=False)
    if isinstance(exc, TimeoutError):
        return SendFailed("SMTP server did not answer in time", permanent=False)
    return SendFailed(f"SMTP server unreachable: {str(exc) or type(exc).__name__}",
                      permanent=False)


def _without_smtputf8(message: EmailMessage, exc: aiosmtplib.SMTPNotSupported) -> SendFailed:
    """The server lacks SMTPUTF8 (the only extension a send needs): the recipient's name is
    beyond ASCII, which no retry changes, or our sender's is, which is ours to fix."""
    if not str(message["To"]).isascii():
        return SendFailed("the mail server does not support SMTPUTF8, which the recipient's "
                          "mailbox name (not ASCII) needs", permanent=True)
    if not parseaddr(str(message["From"]))[1].isascii():
        return SendFailed("the mail server does not support SMTPUTF8, which the sender's "
                          "mailbox name (NOTIFY_MAIL_FROM, not ASCII) needs", permanent=False)
    return classify(exc)


class Mailer:
    def __init__(self, config: Config) -> None:
        self.host, self.port = config.smtp_host, config.smtp_port
        self.security = config.smtp_security
        self.timeout = config.smtp_timeout
        self.sender = config.mail_from
        self._credentials = config.smtp_credentials
        self._tls: ssl.SSLContext | None = None
        if config.smtp_security != "none":
            self._tls = ssl.create_default_context(cafile=config.smtp_ca_file)

    def compose(self, to: str, email: Email) -> EmailMessage:
        """multipart/alternative: the plain text first, the HTML for clients that show it."""
        message = EmailMessage()
        name, address = parseaddr(self.sender)
        message["From"] = formataddr((name, ascii_where_possible(address)))
        message["To"] = ascii_where_possible(to)
        message["Subject"] = email.subject
        message["Date"] = format_datetime(datetime.now(UTC))
        message["Message-ID"] = make_msgid(domain=address.rpartition("@")[2] or None)
        message.set_content(email.text)
        message.add_alternative(email.html, subtype="html")
        return message

    async def send(self, message: EmailMessage) -> str:
        """Hands the message to the server; its Message-ID. Raises SendFailed."""
        username, password = self._credentials or (None, None)
        try:
            # The whole exchange within one deadline, not only each command.
            async with asyncio.timeout(self.timeout):
                await aiosmtplib.send(
                    message, hostname=self.host, port=self.port, username=username,
                    password=password, use_tls=self.security == "tls",
                    start_tls=self.security == "starttls", tls_context=self._tls,
                    timeout=self.timeout)
        except aiosmtplib.SMTPNotSupported as exc:
            raise _without_smtputf8(message, exc) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise classify(exc) from exc
        return str(message["Message-ID"])

    async def ping(self) -> None:
        """Health check: connect (and the TLS handshake), NOOP, QUIT."""
        client = aiosmtplib.SMTP(hostname=self.host, port=self.port, timeout=self.timeout,
                                 use_tls=self.security == "tls",
                                 start_tls=self.security == "starttls", tls_context=self._tls)
        async with asyncio.timeout(self.timeout):
            await client.connect()
            try:
                await client.noop()
                await client.quit()
            finally:
                client.close()
