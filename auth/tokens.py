"""Minting access tokens (EdDSA JWT) and refresh tokens (opaque, stored hashed)."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common.auth import ALGORITHM, key_id, public_jwk


class TokenSigner:
    def __init__(self, key: Ed25519PrivateKey, *, issuer: str, audience: str, ttl: int) -> None:
        self._key, self.issuer, self.audience, self.ttl = key, issuer, audience, ttl
        self.kid = key_id(key.public_key())

    def access_token(self, *, user_id: str, email: str, role: str, session_id: str,
                     version: int = 0) -> str:
        """`version` is the user's token version (`ver`): revoking the user's tokens below a
        version (a role change, a disable) leaves the ones issued afterwards alone."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "sub": user_id, "email": email, "role": role, "sid": session_id, "ver": version,
            "jti": str(uuid.uuid4()), "iat": now, "exp": now + self.ttl,
            "iss": self.issuer, "aud": self.audience, "type": "access",
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM, headers={"kid": self.kid})

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [public_jwk(self._key.public_key())]}


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def refresh_token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()
