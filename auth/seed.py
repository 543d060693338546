"""Demo data for development: one traveller account, created once."""

from __future__ import annotations

import asyncpg

from auth import db
from auth.config import Config
from auth.passwords import hash_password

DEMO_EMAIL = "traveller@tourbook.example"
DEMO_PASSWORD = "Traveller123"  # noqa: S105 - a documented demo account for local development


async def seed(config: Config) -> None:
    conn = await asyncpg.connect(config.database_url)
    try:
        if await db.user_by_email(conn, DEMO_EMAIL) is None:
            password_hash = await hash_password(DEMO_PASSWORD, config.bcrypt_rounds)
            await db.insert_user(conn, email=DEMO_EMAIL, first_name="Demo", last_name="Traveller",
                                 phone="+33612345678", password_hash=password_hash)
    finally:
        await conn.close()
