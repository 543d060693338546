"""auth's SQL: one function per query, the connection first, plain records back."""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path

import asyncpg

from common.db import MigrationSource

MIGRATIONS = [MigrationSource("auth", Path(__file__).parent / "migrations")]

USER_COLUMNS = """id, email, password_hash, first_name, last_name, phone, role, is_active,
                  notify_email, notify_sms, last_login_at, created_at, updated_at, token_version"""
# $1 a part of the e-mail or name (any case), $2 a role, $3 active or not; None lets all through.
USER_FILTERS = """($1::text IS NULL OR strpos(lower(email), lower($1)) > 0
                                 OR strpos(lower(first_name || ' ' || last_name), lower($1)) > 0)
              AND ($2::text IS NULL OR role = $2)
              AND ($3::boolean IS NULL OR is_active = $3)"""


async def insert_user(conn: asyncpg.Connection, *, email: str, password_hash: str, first_name: str,
                      last_name: str, phone: str | None, role: str = "customer") -> asyncpg.Record:
    return await conn.fetchrow(
        f"""INSERT INTO users (id, email, password_hash, first_name, last_name, phone, role)
            VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {USER_COLUMNS}""",
        uuid.uuid4(), email, password_hash, first_name, last_name, phone, role)


async def user_by_email(conn: asyncpg.Connection, email: str) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {USER_COLUMNS} FROM users WHERE email = $1", email)


async def user_by_id(conn: asyncpg.Connection, user_id: uuid.UUID | str) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {USER_COLUMNS} FROM users WHERE id = $1", user_id)


async def touch_last_login(conn: asyncpg.Connection, user_id: uuid.UUID) -> asyncpg.Record:
    return await conn.fetchrow(
        f"UPDATE users SET last_login_at = now() WHERE id = $1 RETURNING {USER_COLUMNS}", user_id)


async def update_profile(conn: asyncpg.Connection, user_id: uuid.UUID | str, *,
                         first_name: str | None, last_name: str | None, phone: str | None,
                         set_phone: bool, notify_email: bool | None,
                         notify_sms: bool | None) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"""UPDATE users SET
               first_name   = COALESCE($2, first_name),
               last_name    = COALESCE($3, last_name),
               phone        = CASE WHEN $5 THEN $4 ELSE phone END,
               notify_email = COALESCE($6, notify_email),
               notify_sms   = COALESCE($7, notify_sms),
               updated_at   = now()
            WHERE id = $1 RETURNING {USER_COLUMNS}""",
        user_id, first_name, last_name, phone, set_phone, notify_email, notify_sms)


async def set_role(conn: asyncpg.Connection, user_id: uuid.UUID, role: str) -> None:
    await conn.execute("UPDATE users SET role = $2, updated_at = now() WHERE id = $1",
                       user_id, role)


async def insert_session(conn: asyncpg.Connection, user_id: uuid.UUID) -> uuid.UUID:
    session_id = uuid.uuid4()
    await conn.execute("INSERT INTO sessions (id, user_id) VALUES ($1, $2)", session_id, user_id)
    return session_id


async def revoke_session(conn: asyncpg.Connection, session_id: uuid.UUID | str,
                         reason: str) -> None:
    await conn.execute(
        "UPDATE sessions SET revoked_at = now(), revoked_reason = $2"
        " WHERE id = $1 AND revoked_at IS NULL", session_id, reason)


async def insert_refresh_token(conn: asyncpg.Connection, *, token_hash: bytes,
                               session_id: uuid.UUID, user_id: uuid.UUID,
                               expires_at: datetime) -> None:
    await conn.execute(
        "INSERT INTO refresh_tokens (token_hash, session_id, user_id, expires_at)"
        " VALUES ($1, $2, $3, $4)", token_hash, session_id, user_id, expires_at)


async def spend_refresh_token(conn: asyncpg.Connection, token_hash: bytes) -> asyncpg.Record | None:
    """Marks a live token spent in one conditional update: of two concurrent refreshes, one wins."""
    return await conn.fetchrow(
        """UPDATE refresh_tokens t SET spent_at = now()
             FROM sessions s
            WHERE t.token_hash = $1 AND t.spent_at IS NULL AND t.expires_at > now()
              AND s.id = t.session_id AND s.revoked_at IS NULL
        RETURNING t.session_id, t.user_id""", token_hash)


async def refresh_token_state(conn: asyncpg.Connection, token_hash: bytes) -> asyncpg.Record | None:
    """Why a token could not be spent: unknown, expired, spent (and how long ago), revoked, or
    its account disabled."""
    return await conn.fetchrow(
        """SELECT t.session_id, t.user_id, t.expires_at <= now() AS expired,
                  EXTRACT(EPOCH FROM now() - t.spent_at) AS spent_seconds_ago,
                  s.revoked_at IS NOT NULL AS revoked, u.is_active
             FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id
                  JOIN users u ON u.id = t.user_id
            WHERE t.token_hash = $1""", token_hash)


# --- administration --------------------------------------------------------------------------

async def list_users(conn: asyncpg.Connection, *, query: str | None, role: str | None,
                     active: bool | None, limit: int, offset: int) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        f"""SELECT {USER_COLUMNS} FROM users WHERE {USER_FILTERS}
            ORDER BY created_at DESC, id LIMIT $4 OFFSET $5""",
        query, role, active, limit, offset)
    return rows


async def count_users(conn: asyncpg.Connection, *, query: str | None, role: str | None,
                      active: bool | None) -> int:
    count: int = await conn.fetchval(f"SELECT count(*) FROM users WHERE {USER_FILTERS}",
                                     query, role, active)
    return count


async def lock_active_admins(conn: asyncpg.Connection) -> set[uuid.UUID]:
    """The active administrators, locked until the transaction ends: two admins changing each
    other at once are served one after the other, each seeing the other's change."""
    rows = await conn.fetch(
        "SELECT id FROM users WHERE role = 'admin' AND is_active ORDER BY id FOR UPDATE")
    return {row["id"] for row in rows}


async def lock_user(conn: asyncpg.Connection, user_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {USER_COLUMNS} FROM users WHERE id = $1 FOR UPDATE",
                               user_id)


async def change_user(conn: asyncpg.Connection, user_id: uuid.UUID, *, role: str,
                      is_active: bool, revoke_tokens: bool) -> asyncpg.Record:
    """Sets the role and the active flag; `revoke_tokens` raises the token version."""
    return await conn.fetchrow(
        f"""UPDATE users SET role = $2, is_active = $3,
                   token_version = token_version + CASE WHEN $4 THEN 1 ELSE 0 END,
                   updated_at = now()
             WHERE id = $1 RETURNING {USER_COLUMNS}""", user_id, role, is_active, revoke_tokens)


async def revoke_user_sessions(conn: asyncpg.Connection, user_id: uuid.UUID, reason: str) -> None:
    await conn.execute(
        "UPDATE sessions SET revoked_at = now(), revoked_reason = $2"
        " WHERE user_id = $1 AND revoked_at IS NULL", user_id, reason)
