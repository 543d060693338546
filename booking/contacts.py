"""Who to contact about a booking when the request names nobody: the account's e-mail from the
access token, its name and phone from auth's `/internal/users/{id}`.

The lookup is a convenience, never a reason to refuse a booking: when auth is slow, down or does
not know the user, the booking goes ahead with the token's e-mail and the failure is logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp
import structlog

from common.auth import SERVICE_HEADER, Identity

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Contact:
    name: str
    email: str
    phone: str | None


def fallback_contact(identity: Identity) -> Contact:
    """The token's e-mail, and its local part as the name (better than no name in an e-mail)."""
    return Contact(name=identity.email.partition("@")[0] or identity.email,
                   email=identity.email, phone=None)


class ContactBook:
    def __init__(self, session: aiohttp.ClientSession, auth_url: str, service_token: str,
                 timeout: float) -> None:
        self._session = session
        self._auth_url = auth_url.rstrip("/")
        self._headers = {SERVICE_HEADER: service_token}
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def contact(self, identity: Identity) -> Contact:
        try:
            user = await self._profile(identity.user_id)
        except Exception as exc:  # whatever went wrong, the booking goes ahead without it
            log.warning("contact_lookup_failed", error=str(exc) or type(exc).__name__)
            return fallback_contact(identity)
        name = " ".join(str(user[part]) for part in ("firstName", "lastName") if user.get(part))
        phone = user.get("phone")
        return Contact(name=name or fallback_contact(identity).name, email=identity.email,
                       phone=phone if isinstance(phone, str) and phone else None)

    async def _profile(self, user_id: str) -> dict[str, Any]:
        url = f"{self._auth_url}/internal/users/{user_id}"
        async with self._session.get(url, headers=self._headers, timeout=self._timeout) as resp:
            if resp.status != 200:
                raise LookupError(f"auth answered {resp.status}")
            user = await resp.json()
        if not isinstance(user, dict):
            raise LookupError("auth's answer is not a user")
        return user
