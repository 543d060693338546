"""SMS through a provider: a Twilio-style REST API (`HttpSms`) or, in development, the log
(`LogSms`). A refused message (a 4xx such as an invalid number) fails for good; anything else,
our settings' errors included (401/403/404), is retried, no sooner than the `Retry-After`."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Protocol

import aiohttp
import structlog

from notify.failures import SendFailed
from notify.formatting import mask

log = structlog.get_logger(__name__)

# 401/403 are our credentials and 404/405 our endpoint (Twilio answers 404 to an account id it
# does not know): every SMS fails alike until the settings are fixed, so none is given up on.
# A refusal of the message itself (an invalid number) is a 400 with the provider's code.
_TRANSIENT = frozenset({401, 403, 404, 405, 408, 409, 425, 429})


class SmsSender(Protocol):
    async def send(self, to: str, body: str) -> str | None:
        """Hands the text to the provider; its id of the message. Raises SendFailed."""


class LogSms:
    """Development: the SMS is written to the log instead of being sent."""

    async def send(self, to: str, body: str) -> str | None:
        log.info("sms_logged", to=mask(to), body=body)
        return f"log-{uuid.uuid4()}"


class HttpSms:
    """POST `To`, `From`, `Body` as a form, with HTTP Basic auth (account id, token), as
    Twilio's Messages API takes them; the JSON answer's `sid` is the message's id."""

    def __init__(self, session: aiohttp.ClientSession, url: str, *, account_sid: str,
                 auth_token: str, sender: str, timeout: float) -> None:
        self._session = session
        self.url = url
        self._headers = {"Authorization": aiohttp.encode_basic_auth(account_sid, auth_token)}
        self.sender = sender
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def send(self, to: str, body: str) -> str | None:
        form = {"To": to, "From": self.sender, "Body": body}
        try:
            async with self._session.post(self.url, data=form, headers=self._headers,
                                          timeout=self._timeout) as resp:
                # Undecodable bytes must not hide the status: a 2xx was taken, whatever follows.
                text = await resp.text(errors="replace")
                status, retry_header = resp.status, resp.headers.get("Retry-After")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SendFailed(f"SMS provider unreachable: {str(exc) or type(exc).__name__}",
                             permanent=False) from exc
        if 200 <= status < 300:
            return _sid(text)
        detail = f"SMS provider answered {status}: {_message(text)}"
        raise SendFailed(detail, permanent=400 <= status < 500 and status not in _TRANSIENT,
                         retry_after=retry_after(retry_header))


def retry_after(value: str | None) -> float | None:
    """Seconds a `Retry-After` header asks to wait: delay-seconds or an HTTP-date (RFC 9110)."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _sid(text: str) -> str | None:
    try:
        answer = json.loads(text)
    except ValueError:
        return None
    sid = answer.get("sid") if isinstance(answer, dict) else None
    return str(sid) if sid else None


def _message(text: str) -> str:
    """The provider's own words (Twilio: `message`), on one line and short; never our
    request. A body that is not JSON (a proxy's HTML page...) is quoted as it is."""
    try:
        answer = json.loads(text)
    except ValueError:
        answer = None
    if isinstance(answer, dict) and answer.get("message"):
        text = str(answer["message"])
    return " ".join(text.split())[:200]
