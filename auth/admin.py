"""Creating the administrator from operator-provided values (`./ops/dev create-admin`)."""

from __future__ import annotations

import asyncpg
from pydantic import TypeAdapter, ValidationError

from auth import db
from auth.config import Config
from auth.passwords import hash_password
from auth.schemas import Password
from common.http.fields import Email


class AdminError(ValueError):
    """The email or password given for the admin is not acceptable."""


async def ensure_admin(config: Config, email: str, password: str) -> str:
    """'created' a new admin, 'promoted' an existing user, or 'exists' (nothing changed)."""
    try:
        email = TypeAdapter(Email).validate_python(email)
        TypeAdapter(Password).validate_python(password)
    except ValidationError as exc:
        raise AdminError("; ".join(e["msg"] for e in exc.errors())) from None
    conn = await asyncpg.connect(config.database_url)
    try:
        async with conn.transaction():
            user = await db.user_by_email(conn, email)
            if user is None:
                password_hash = await hash_password(password, config.bcrypt_rounds)
                await db.insert_user(conn, email=email, first_name="Admin", last_name="tourbook",
                                     password_hash=password_hash, phone=None, role="admin")
                return "created"
            if user["role"] == "admin":
                return "exists"
            await db.set_role(conn, user["id"], "admin")
            return "promoted"
    finally:
        await conn.close()
