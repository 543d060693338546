"""The platform as users meet it: real auth, catalog, booking and gateway processes on the run's
databases, broker vhost and Redis prefix, and the people who use it (an admin, travellers)."""

from __future__ import annotations

import asyncio
import json
import os
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from auth.admin import ensure_admin
from auth.config import Config as AuthConfig
from common import testing
from common.config import load_config
from common.testing import TEST_PASSWORD, free_port
from ops.stack import Stack

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
INTERNAL_TOKEN = "platform-internal-token"


def call(method: str, url: str, body: Any = None, *, token: str | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, Any, dict[str, str]]:
    """One HTTP call from outside: (status, JSON body or None, headers)."""
    sent = {"Content-Type": "application/json", **(headers or {})}
    if token:
        sent["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=sent)
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            raw, status, got = resp.read(), resp.status, dict(resp.headers)
    except urllib.error.HTTPError as exc:
        raw, status, got = exc.read(), exc.code, dict(exc.headers)
    return status, json.loads(raw) if raw else None, got


@pytest.fixture(scope="session")
def stack(run_id: str, key_files: tuple[Path, Path], amqp_url: str, redis_prefix: str,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Processes started by the tests of this folder, stopped (and their databases dropped) at
    the end of the run."""
    private, public = key_files
    stack = Stack(
        env={"APP_ENV": "test", "LOG_FORMAT": "json", "LOG_LEVEL": "INFO",
             "AMQP_URL": amqp_url, "REDIS_URL": REDIS_URL,
             "REDIS_PREFIX": f"{redis_prefix}platform:",
             "JWT_PRIVATE_KEY_FILE": str(private), "JWT_PUBLIC_KEY_FILE": str(public),
             "INTERNAL_TOKENS": INTERNAL_TOKEN, "AUTH_BCRYPT_ROUNDS": "4",
             "AUTH_ACCESS_TOKEN_TTL": "3600", "GATEWAY_RATE_LIMITS": "/=1000000/60"},
        database_server=POSTGRES_URL, prefix=f"tb_{run_id}_platform",
        logs=tmp_path_factory.mktemp("platform-logs"))
    yield stack
    stack.stop()


WEBHOOK_SECRET = "whsec_platform_tests"


@pytest.fixture(scope="session")
def platform(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """One process of each service with the gateway in front, the Stripe stand-in delivering
    its webhooks to the gateway, and the SMTP sink receiving notify's e-mail: {name: base URL}
    (`smtp` is the sink's HTTP API, `smtpPort` where it receives SMTP)."""
    # Each service is told where the others answer, those that start after it included
    # (auth reads booking, booking reads payments): the stack chose every port beforehand.
    stack.start("auth")
    stack.start("catalog")
    stack.start("booking")
    smtp_port = free_port()
    stripe = stack.start(
        "standins.stripe", health="/health", STRIPE_STANDIN_WEBHOOK_SECRET=WEBHOOK_SECRET,
        STRIPE_STANDIN_WEBHOOK_URL=stack.url("gateway") + "/webhooks/stripe",
        STRIPE_STANDIN_WEBHOOK_BACKOFF="0.2")
    stack.start("payments", STRIPE_API_BASE=stripe, STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET)
    smtp = stack.start("standins.smtp", health="/health", SMTP_STANDIN_SMTP_PORT=str(smtp_port),
                       SMTP_STANDIN_DIRECTORY=str(tmp_path_factory.mktemp("mail")))
    stack.start("notify", SMTP_HOST="127.0.0.1", SMTP_PORT=str(smtp_port))
    # Browsers open the pages on the gateway, and the WebSocket from there.
    origin = stack.url("gateway")
    stack.start("realtime", REALTIME_ALLOWED_ORIGINS=origin)
    stack.start("web", WEB_API_URL=origin, WEB_STRIPE_STANDIN_URL=stripe)
    stack.start("gateway", GATEWAY_CORS_ORIGINS=origin,
                GATEWAY_TRUSTED_PROXIES="127.0.0.1/32", GATEWAY_PAGE_CLIENTS="127.0.0.1/32")
    names = ("auth", "catalog", "booking", "payments", "notify", "realtime", "web", "gateway")
    return {"stripe": stripe, "smtp": smtp, "smtpPort": str(smtp_port),
            **{name: stack.urls(name)[0] for name in names}}


@pytest.fixture(scope="session")
def admin_token(stack: Stack, platform: dict[str, str]) -> str:
    email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
    config = load_config(AuthConfig, stack.env_for("auth"))
    asyncio.run(ensure_admin(config, email, TEST_PASSWORD))
    status, body, _ = call("POST", platform["gateway"] + "/api/auth/login",
                           {"email": email, "password": TEST_PASSWORD})
    assert status == 200, body
    return str(body["accessToken"])


def register(gateway: str, first_name: str = "Tess") -> dict[str, Any]:
    """A new traveller: the register answer (`user`, `accessToken`, `refreshToken`)."""
    return testing.register(gateway, first_name, phone="+33612345678")
