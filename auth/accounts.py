"""The account rules: registration, login, refresh-token rotation with reuse detection, profile."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg
import structlog
from redis.exceptions import RedisError

from auth import db
from auth.config import Config
from auth.passwords import check_password, hash_password
from auth.schemas import ProfilePatch, RegisterIn
from auth.tokens import TokenSigner, new_refresh_token, refresh_token_hash
from common.auth import Identity
from common.errors import (
    Conflict,
    Forbidden,
    NotFound,
    Unauthorized,
    Unavailable,
    ValidationFailed,
)
from common.http.fields import normalise_email
from common.revocation import RevocationPublisher

log = structlog.get_logger(__name__)


class EmailTaken(Conflict):
    code, message = "EMAIL_EXISTS", "An account already uses this email"


class InvalidCredentials(Unauthorized):
    code, message = "INVALID_CREDENTIALS", "Wrong email or password"


class AccountDisabled(Forbidden):
    code, message = "ACCOUNT_DISABLED", "This account is disabled"


class InvalidRefreshToken(Unauthorized):
    code, message = "INVALID_REFRESH_TOKEN", "The refresh token is not valid"


class RefreshTokenAlreadyUsed(Unauthorized):
    code = "REFRESH_TOKEN_ALREADY_USED"
    message = "This refresh token was just used by another request; use the tokens it returned"


class RefreshTokenReused(Unauthorized):
    code = "REFRESH_TOKEN_REUSED"
    message = "This refresh token was already used; the session has been revoked, log in again"


class UserNotFound(NotFound):
    code, message = "USER_NOT_FOUND", "No such user"


class RevocationUnavailable(Unavailable):
    code = "REVOCATION_UNAVAILABLE"
    message = ("Done, but the access tokens it ends could not be revoked (the revocation list "
               "cannot be reached) and work until they expire; send the same request again")


@dataclass(frozen=True)
class Session:
    user: asyncpg.Record
    access_token: str
    refresh_token: str


class Accounts:
    def __init__(self, pool: asyncpg.Pool, signer: TokenSigner, config: Config,
                 dummy_hash: str, revocations: RevocationPublisher) -> None:
        self._pool, self._signer, self._config = pool, signer, config
        self._revocations = revocations
        # Login checks a password against this when the email is unknown, so both cases cost a
        # bcrypt comparison and cannot be told apart by timing.
        self._dummy_hash = dummy_hash

    async def register(self, data: RegisterIn) -> Session:
        password_hash = await hash_password(data.password, self._config.bcrypt_rounds)
        async with self._pool.acquire() as conn, conn.transaction():
            try:
                user = await db.insert_user(
                    conn, email=data.email, password_hash=password_hash,
                    first_name=data.first_name, last_name=data.last_name, phone=data.phone)
            except asyncpg.UniqueViolationError:
                raise EmailTaken() from None
            session = await self._open_session(conn, user)
        log.info("user_registered", userId=str(user["id"]))
        return session

    async def login(self, email: str, password: str) -> Session:
        try:
            email = normalise_email(email)
        except ValueError:
            email = ""
        async with self._pool.acquire() as conn:
            user = await db.user_by_email(conn, email) if email else None
        stored_hash = user["password_hash"] if user else self._dummy_hash
        matches = await check_password(password, stored_hash)
        if user is None or not matches:
            raise InvalidCredentials()
        if not user["is_active"]:
            raise AccountDisabled()
        async with self._pool.acquire() as conn, conn.transaction():
            user = await db.touch_last_login(conn, user["id"])
            session = await self._open_session(conn, user)
        log.info("user_logged_in", userId=str(user["id"]))
        return session

    async def refresh(self, token: str) -> Session:
        token_hash = refresh_token_hash(token)
        async with self._pool.acquire() as conn:
            async with conn.transaction():
                spent = await db.spend_refresh_token(conn, token_hash)
                user = await db.user_by_id(conn, spent["user_id"]) if spent else None
                if spent is not None and user is not None and user["is_active"]:
                    access, refresh = await self._issue(conn, user, spent["session_id"])
                    return Session(user, access, refresh)
            if spent is not None:
                await db.revoke_session(conn, spent["session_id"], "account_disabled")
                raise AccountDisabled()
            await self._refuse_refresh(conn, token_hash)
            raise InvalidRefreshToken()  # unreachable: _refuse_refresh always raises

    async def _refuse_refresh(self, conn: asyncpg.Connection, token_hash: bytes) -> None:
        """Says why a token cannot be spent, revoking its session when it is a replay."""
        state = await db.refresh_token_state(conn, token_hash)
        if state is not None and not state["is_active"]:
            raise AccountDisabled()
        if (state is None or state["revoked"] or state["expired"]
                or state["spent_seconds_ago"] is None):
            raise InvalidRefreshToken()
        if state["spent_seconds_ago"] <= self._config.refresh_reuse_grace:
            raise RefreshTokenAlreadyUsed()
        await db.revoke_session(conn, state["session_id"], "refresh_token_reuse")
        log.warning("refresh_token_reuse", userId=str(state["user_id"]),
                    sessionId=str(state["session_id"]))
        try:  # the thief's access tokens too; the 401 below is the answer either way
            await self._revocations.session(str(state["user_id"]), str(state["session_id"]),
                                            "refresh_token_reuse")
        except (RedisError, OSError) as exc:
            log.error("revocation_not_published", userId=str(state["user_id"]),
                      sessionId=str(state["session_id"]), error=str(exc))
        raise RefreshTokenReused()

    async def logout(self, identity: Identity) -> None:
        """The session's refresh tokens, then its access tokens. Sent again after a failure to
        reach the revocation list, it revokes them again (the token used is not revoked yet)."""
        if identity.session_id is None:
            return
        async with self._pool.acquire() as conn:
            await db.revoke_session(conn, identity.session_id, "logout")
        try:
            await self._revocations.session(identity.user_id, identity.session_id, "logout")
        except (RedisError, OSError) as exc:
            log.error("revocation_not_published", userId=identity.user_id,
                      sessionId=identity.session_id, error=str(exc))
            raise RevocationUnavailable() from None

    async def profile(self, user_id: str) -> asyncpg.Record:
        async with self._pool.acquire() as conn:
            user = await db.user_by_id(conn, UUID(user_id))
        if user is None:
            raise UserNotFound()
        return user

    async def update_profile(self, user_id: str, patch: ProfilePatch) -> asyncpg.Record:
        prefs = patch.notification_preferences
        async with self._pool.acquire() as conn, conn.transaction():
            user = await db.update_profile(
                conn, UUID(user_id), first_name=patch.first_name, last_name=patch.last_name,
                phone=patch.phone, set_phone="phone" in patch.model_fields_set,
                notify_email=prefs.email if prefs else None,
                notify_sms=prefs.sms if prefs else None)
            if user is None:
                raise UserNotFound()
            if user["notify_sms"] and not user["phone"]:
                raise SmsNeedsPhone()
        return user

    async def _open_session(self, conn: asyncpg.Connection, user: asyncpg.Record) -> Session:
        session_id = await db.insert_session(conn, user["id"])
        access, refresh = await self._issue(conn, user, session_id)
        return Session(user, access, refresh)

    async def _issue(self, conn: asyncpg.Connection, user: asyncpg.Record,
                     session_id: UUID) -> tuple[str, str]:
        refresh = new_refresh_token()
        expires = datetime.now(UTC) + timedelta(seconds=self._config.refresh_token_ttl)
        await db.insert_refresh_token(conn, token_hash=refresh_token_hash(refresh),
                                      session_id=session_id, user_id=user["id"], expires_at=expires)
        access = self._signer.access_token(user_id=str(user["id"]), email=user["email"],
                                           role=user["role"], session_id=str(session_id),
                                           version=user["token_version"])
        return access, refresh


class SmsNeedsPhone(ValidationFailed):
    message = "SMS notifications need a phone number"

    def __init__(self) -> None:
        super().__init__(details=[{"field": "notificationPreferences.sms",
                                   "message": "SMS notifications need a phone number"}])
