"""Password hashing with bcrypt, off the event loop.

bcrypt reads at most 72 bytes, so the password is first reduced to a SHA-256 digest (base64,
44 bytes): every character of a 128-character password counts.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib

import bcrypt


def _prehash(password: str) -> bytes:
    return base64.b64encode(hashlib.sha256(password.encode()).digest())


def hash_password_sync(password: str, rounds: int) -> str:
    return bcrypt.hashpw(_prehash(password), bcrypt.gensalt(rounds)).decode()


async def hash_password(password: str, rounds: int) -> str:
    return await asyncio.to_thread(hash_password_sync, password, rounds)


async def check_password(password: str, password_hash: str) -> bool:
    return await asyncio.to_thread(bcrypt.checkpw, _prehash(password), password_hash.encode())
