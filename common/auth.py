"""Access-token verification for every service: the public key from a file or a JWKS URL, the
identity a request carries, the revocation list, role and owner checks, and the service credential
for `/internal`."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp
import jwt
import structlog
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from common.errors import Forbidden, Unauthorized, Unavailable

if TYPE_CHECKING:
    from common.revocation import RevocationList

log = structlog.get_logger(__name__)

ALGORITHM = "EdDSA"
SERVICE_HEADER = "X-Internal-Token"


class TokenMissing(Unauthorized):
    code, message = "AUTH_TOKEN_MISSING", "An access token is required"


class TokenExpired(Unauthorized):
    code, message = "AUTH_TOKEN_EXPIRED", "The access token has expired"


class TokenInvalid(Unauthorized):
    code, message = "AUTH_TOKEN_INVALID", "The access token is not valid"


class TokenRevoked(Unauthorized):
    code, message = "AUTH_TOKEN_REVOKED", "The access token has been revoked; log in again"


class AdminOnly(Forbidden):
    code, message = "FORBIDDEN_ADMIN_ONLY", "This action is reserved to administrators"


class ManagersOnly(Forbidden):
    code, message = "FORBIDDEN_ROLE", "This action is reserved to managers and administrators"


class NotOwner(Forbidden):
    code, message = "FORBIDDEN", "This belongs to another user"


class ServiceCredentialInvalid(Unauthorized):
    code, message = "SERVICE_CREDENTIAL_INVALID", "A valid service credential is required"


@dataclass(frozen=True)
class Identity:
    """Who a verified access token says the caller is."""

    user_id: str
    email: str
    role: str
    session_id: str | None
    token_id: str
    token_version: int = 0
    """The user's token version when the token was issued (claim `ver`): a role change or a
    disable raises it, and revokes the tokens issued below it."""

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def is_manager(self) -> bool:
        """Runs tours, departures and bookings: a manager, or an admin (who may do all of it)."""
        return self.role in ("manager", "admin")

    def may_access(self, owner_id: object) -> bool:
        """The owner, or staff: managers and admins see every booking, payment and message."""
        return self.is_manager or str(owner_id) == self.user_id


def key_id(public_key: Ed25519PublicKey) -> str:
    """RFC 7638 thumbprint of the key's JWK, used as `kid`."""
    x = public_jwk(public_key, with_kid=False)["x"]
    canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def public_jwk(public_key: Ed25519PublicKey, *, with_kid: bool = True) -> dict[str, str]:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": base64.urlsafe_b64encode(raw).rstrip(b"=").decode(),
           "use": "sig", "alg": ALGORITHM}
    if with_kid:
        jwk["kid"] = key_id(public_key)
    return jwk


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("the JWT public key must be an Ed25519 key")
    return key


class KeySource(Protocol):
    async def get(self, kid: str | None) -> Ed25519PublicKey | None: ...


class StaticKeys:
    """Public keys read once from PEM files."""

    def __init__(self, keys: Sequence[Ed25519PublicKey]) -> None:
        self._keys = {key_id(k): k for k in keys}

    @classmethod
    def from_files(cls, *paths: str | Path) -> StaticKeys:
        return cls([load_public_key(Path(p).read_bytes()) for p in paths])

    async def get(self, kid: str | None) -> Ed25519PublicKey | None:
        if kid is None:
            return next(iter(self._keys.values())) if len(self._keys) == 1 else None
        return self._keys.get(kid)


class JwksKeys:
    """Keys fetched from a JWKS URL, cached for `ttl` seconds and refetched on an unknown `kid`.

    Fetches are attempted at most once per `min_refresh` seconds, whatever their outcome, and
    concurrent callers share one fetch: a flood of forged kids, or auth being down, cannot turn
    into a flood of requests to auth.
    """

    def __init__(self, url: str, session: aiohttp.ClientSession, *, ttl: float = 300.0,
                 min_refresh: float = 10.0, timeout: float = 3.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._url, self._session, self._ttl, self._min_refresh = url, session, ttl, min_refresh
        self._timeout, self._clock = timeout, clock
        self._keys: dict[str, Ed25519PublicKey] = {}
        self._fetched_at = self._attempted_at = float("-inf")
        self._lock = asyncio.Lock()

    async def get(self, kid: str | None) -> Ed25519PublicKey | None:
        if self._wants_refresh(kid):
            async with self._lock:
                # Whoever waited on the lock finds the fetch done and does not repeat it.
                if self._wants_refresh(kid):
                    await self._refresh()
        if not self._keys:
            raise Unavailable("The keys that verify access tokens cannot be fetched right now")
        if kid is None:
            return next(iter(self._keys.values())) if len(self._keys) == 1 else None
        return self._keys.get(kid)

    def _wants_refresh(self, kid: str | None) -> bool:
        now = self._clock()
        if now - self._attempted_at < self._min_refresh:
            return False
        return now - self._fetched_at > self._ttl or (kid is not None and kid not in self._keys)

    async def _refresh(self) -> None:
        self._attempted_at = self._clock()
        try:
            async with self._session.get(
                    self._url, timeout=aiohttp.ClientTimeout(total=self._timeout)) as resp:
                resp.raise_for_status()
                document = await resp.json(content_type=None)
            keys = _parse_jwks(document)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            # The keys we have stay in use until a fetch succeeds.
            log.warning("jwks_fetch_failed", url=self._url, error=str(exc) or type(exc).__name__)
            return
        self._keys = keys
        self._fetched_at = self._clock()
        log.info("jwks_fetched", url=self._url, kids=sorted(keys))


def _parse_jwks(document: object) -> dict[str, Ed25519PublicKey]:
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWKS document")
    keys = {}
    for jwk in document["keys"]:
        if not (isinstance(jwk, dict) and jwk.get("kty") == "OKP" and jwk.get("crv") == "Ed25519"):
            continue  # another algorithm's key: not ours to use
        try:
            key = jwt.PyJWK(jwk, algorithm=ALGORITHM).key
        except jwt.PyJWTError:  # PyJWKError, and InvalidKeyError for a malformed "x"
            log.warning("jwks_key_skipped", kid=jwk.get("kid"))
            continue
        if isinstance(key, Ed25519PublicKey):
            keys[str(jwk.get("kid") or key_id(key))] = key
    return keys


@dataclass(frozen=True)
class _Verified:
    identity: Identity
    key: Ed25519PublicKey
    kid: str | None
    valid_until: float  # `exp` plus the leeway, in epoch seconds


class TokenVerifier:
    """Verifies access tokens: EdDSA only, issuer, audience, expiry and the claims we rely on.

    A client sends the same token with every request until it expires, so a verified token is
    remembered (by its exact text, signature included) until its `exp`: the signature is checked
    once per token, not once per request. A remembered token is accepted only while the key that
    verified it is still the key its `kid` names, so a key rotated out invalidates every token it
    signed, at once. The memory holds at most `cache_size` tokens, the oldest leaving first;
    tokens that fail are never remembered, so forged ones cannot crowd out good ones.

    With a revocation list, every token, remembered or not, is also looked up there (a local
    lookup, no network): a revoked one is refused with AUTH_TOKEN_REVOKED.
    """

    REQUIRED = ("sub", "email", "role", "jti", "exp", "iat", "iss", "aud")

    def __init__(self, keys: KeySource, *, issuer: str, audience: str, leeway: float = 5.0,
                 cache_size: int = 10_000, revocations: RevocationList | None = None) -> None:
        self._keys, self._issuer, self._audience, self._leeway = keys, issuer, audience, leeway
        self._cache_size = cache_size
        self._verified: dict[str, _Verified] = {}
        self.revocations = revocations

    def __len__(self) -> int:
        """How many verified tokens are remembered."""
        return len(self._verified)

    async def verify(self, token: str) -> Identity:
        identity = await self._verified_identity(token)
        if self.revocations is not None and self.revocations.is_revoked(identity):
            raise TokenRevoked()
        return identity

    async def _verified_identity(self, token: str) -> Identity:
        cached = self._verified.get(token)
        if cached is not None:
            if (time.time() <= cached.valid_until
                    and await self._keys.get(cached.kid) is cached.key):
                return cached.identity
            del self._verified[token]  # expired, or its key was rotated out: check it in full
        return await self._verify_and_remember(token)

    async def _verify_and_remember(self, token: str) -> Identity:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise TokenInvalid() from exc
        # Only our algorithm: refuses `alg: none`, HS256 confusion and anything else.
        if header.get("alg") != ALGORITHM:
            raise TokenInvalid()
        kid = header.get("kid")  # PyJWT has checked it is a string
        key = await self._keys.get(kid)
        if key is None:
            raise TokenInvalid()
        try:
            claims: dict[str, Any] = jwt.decode(
                token, key, algorithms=[ALGORITHM], audience=self._audience, issuer=self._issuer,
                leeway=self._leeway, options={"require": list(self.REQUIRED)})
        except jwt.ExpiredSignatureError as exc:
            raise TokenExpired() from exc
        except jwt.PyJWTError as exc:
            raise TokenInvalid() from exc
        if claims.get("type", "access") != "access":
            raise TokenInvalid()
        version = claims.get("ver", 0)
        if not isinstance(version, int) or isinstance(version, bool):
            raise TokenInvalid()
        identity = Identity(user_id=str(claims["sub"]), email=str(claims["email"]),
                            role=str(claims["role"]), session_id=claims.get("sid"),
                            token_id=str(claims["jti"]), token_version=version)
        if self._cache_size > 0:
            while len(self._verified) >= self._cache_size:
                del self._verified[next(iter(self._verified))]  # the oldest entry
            self._verified[token] = _Verified(identity, key, kid,
                                              float(claims["exp"]) + self._leeway)
        return identity


VERIFIER: web.AppKey[TokenVerifier] = web.AppKey("token_verifier", TokenVerifier)
INTERNAL_TOKENS: web.AppKey[tuple[str, ...]] = web.AppKey("internal_tokens", tuple)
IDENTITY_KEY: web.RequestKey[Identity] = web.RequestKey("identity", Identity)


def bearer_token(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise TokenMissing()
    if scheme.lower() != "bearer" or not token.strip() or " " in token.strip():
        raise TokenInvalid("The Authorization header must be 'Bearer <token>'")
    return token.strip()


async def authenticate(request: web.Request) -> Identity:
    """The caller's identity from its access token; raises 401 with a distinct code otherwise."""
    if IDENTITY_KEY in request:
        return request[IDENTITY_KEY]
    identity = await request.app[VERIFIER].verify(bearer_token(request))
    request[IDENTITY_KEY] = identity
    structlog.contextvars.bind_contextvars(userId=identity.user_id)
    return identity


def require_admin(identity: Identity) -> None:
    if not identity.is_admin:
        raise AdminOnly()


def require_manager(identity: Identity) -> None:
    """A manager or an admin; a customer gets 403 FORBIDDEN_ROLE."""
    if not identity.is_manager:
        raise ManagersOnly()


def require_owner(identity: Identity, owner_id: object) -> None:
    """The resource's user or an admin; anyone else gets 403."""
    if not identity.may_access(owner_id):
        raise NotOwner()


def check_service_credential(request: web.Request) -> None:
    """`/internal` routes: the caller must present one of the configured service tokens."""
    presented = request.headers.get(SERVICE_HEADER, "").encode()
    accepted = request.app[INTERNAL_TOKENS]
    # Compared against every accepted token, in constant time, so timing reveals nothing.
    matches = [hmac.compare_digest(presented, token.encode()) for token in accepted]
    if not presented or not any(matches):
        raise ServiceCredentialInvalid()


def verifier_from_config(public_key_file: str | None, jwks_url: str | None, issuer: str,
                         audience: str, session: aiohttp.ClientSession | None = None, *,
                         jwks_min_refresh: float = 10.0,
                         revocations: RevocationList | None = None) -> TokenVerifier:
    """A file wins over a JWKS URL; one of them is required."""
    keys: KeySource
    if public_key_file and Path(public_key_file).exists():
        keys = StaticKeys.from_files(public_key_file)
    elif jwks_url and session is not None:
        keys = JwksKeys(jwks_url, session, min_refresh=jwks_min_refresh)
    else:
        raise ValueError(
            f"no JWT public key: {public_key_file} does not exist and JWKS_URL is not set")
    return TokenVerifier(keys, issuer=issuer, audience=audience, revocations=revocations)
