"""Builds the auth app: `create_app(config)` does no I/O; resources open in cleanup contexts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import aiohttp
from aiohttp import web

from auth.accounts import Accounts
from auth.app_keys import ACCOUNTS, SIGNER, USERS
from auth.clients import BookingClient
from auth.config import Config
from auth.keys import load_private_key
from auth.passwords import hash_password
from auth.routes import setup_routes
from auth.tokens import TokenSigner
from auth.users import Users
from common import auth as common_auth
from common import db, revocation
from common.http import service_app
from common.http.health import HEALTH

# Revocation entries outlive the tokens they cover by this much: the verifiers' leeway on `exp`,
# and clocks that disagree a little.
REVOCATION_MARGIN = 60.0


def create_app(config: Config) -> web.Application:
    app = service_app(config, title="tourbook auth",
                      description="Accounts, sessions and access tokens; user administration.")
    app.cleanup_ctx.append(db.pool_ctx(config.database_url))
    app.cleanup_ctx.append(_accounts_ctx(config))
    setup_routes(app)
    return app


def _accounts_ctx(config: Config) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        key = load_private_key(config.jwt_private_key_file)
        signer = TokenSigner(key, issuer=config.jwt_issuer, audience=config.jwt_audience,
                             ttl=config.access_token_ttl)
        app[SIGNER] = signer
        stream = revocation.stream_key(config.redis_prefix)
        async with revocation.following(config.redis_url, stream) as revoked, \
                aiohttp.ClientSession() as to_booking:
            writer = revocation.redis_client(config.redis_url, timeout=2.0)
            publisher = revocation.RevocationPublisher(
                writer, stream, config.access_token_ttl + REVOCATION_MARGIN, mirror=revoked)
            # auth verifies its own tokens with its own public key: no network hop.
            app[common_auth.VERIFIER] = common_auth.TokenVerifier(
                common_auth.StaticKeys([key.public_key()]), issuer=config.jwt_issuer,
                audience=config.jwt_audience, revocations=revoked)
            app[revocation.REVOCATIONS] = revoked
            app[HEALTH].add("revocations", revoked.check, critical=False)
            dummy_hash = await hash_password("not-a-real-password", config.bcrypt_rounds)
            app[ACCOUNTS] = Accounts(app[db.POOL], signer, config, dummy_hash=dummy_hash,
                                     revocations=publisher)
            bookings = BookingClient(to_booking, config.booking_url, config.internal_tokens[0],
                                     timeout=config.booking_timeout,
                                     reset_timeout=config.breaker_reset_timeout)
            app[USERS] = Users(app[db.POOL], publisher, bookings)
            try:
                yield
            finally:
                await writer.aclose()

    return ctx
