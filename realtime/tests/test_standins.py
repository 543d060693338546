"""realtime's tests put a small server in auth's place for its signing keys (`SlowJwks`): it
answers `GET /api/auth/.well-known/jwks.json` as auth's own OpenAPI document says."""

from __future__ import annotations

from typing import Any

import aiohttp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from auth.app import create_app as create_auth_app
from auth.config import Config as AuthConfig
from common.config import load_config
from common.tests.contracts import PeerContract, served_document
from realtime.tests.test_bookings import JWKS_PATH, SlowJwks


async def test_the_stand_in_answers_auth_s_signing_keys_as_auth_documents_them(
        aiohttp_server: Any) -> None:
    contract = PeerContract("auth", await served_document(
        create_auth_app(load_config(AuthConfig, {"APP_ENV": "test"}))))
    jwks = SlowJwks(Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate())
    keys_at = await aiohttp_server(jwks.app())

    async with aiohttp.ClientSession() as http:
        status, body = await contract.answer(http, "GET", JWKS_PATH,
                                             str(keys_at.make_url(JWKS_PATH)))

    assert (status, len(body["keys"])) == (200, 2)
