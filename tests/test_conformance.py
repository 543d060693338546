"""Each service serves exactly what its OpenAPI document describes, and the gateway says so too: a
method a path does not have is `405` with the path's methods in `Allow`, whoever asks."""

from __future__ import annotations

import importlib
import time
from typing import Any

import pytest

from common.config import load_config
from common.http.openapi import build_openapi
from ops.stack import Stack
from tests.conftest import call, register

SERVICES = ("auth", "catalog", "booking", "payments", "notify", "realtime")
OWN = ("/health", "/metrics", "/openapi.json")


@pytest.mark.parametrize("name", SERVICES)
def test_every_route_a_service_serves_is_in_its_document(stack: Stack, name: str) -> None:
    """The gateway decides 405 from these documents: a route missing from one would be refused
    at the gateway although its service serves it."""
    config = load_config(importlib.import_module(f"{name}.config").Config, stack.env_for(name))
    app = importlib.import_module(f"{name}.app").create_app(config)
    documented = {(path, method.upper())
                  for path, item in build_openapi(app, title=name)["paths"].items()
                  for method in item}
    served = {(route.resource.canonical, route.method) for route in app.router.routes()
              if route.resource is not None and route.method != "HEAD"
              and not route.resource.canonical.startswith(OWN)}
    assert served - documented == set()


def _allow(url: str, method: str, token: str | None) -> tuple[int, str | None]:
    status, body, headers = call(method, url, token=token)
    if status == 405:
        assert body == {"status": 405, "error": "METHOD_NOT_ALLOWED",
                        "message": "This method is not allowed on this path"}
    return status, headers.get("Allow")


@pytest.mark.parametrize(("method", "path", "allow"), [
    ("PUT", "/api/tours/3f1c6a4e-9d1b-4c53-8e0a-6a1f0c2b7d11", "DELETE, GET, HEAD, PATCH"),
    ("OPTIONS", "/api/payments/create-intent", "POST"),
    ("GET", "/api/payments/create-intent", "POST"),
    ("PUT", "/api/auth/login", "POST"),
])
def test_a_method_a_path_lacks_is_405_at_the_gateway_and_at_the_service(
        platform: dict[str, str], method: str, path: str, allow: str) -> None:
    customer: dict[str, Any] = register(platform["gateway"], "Wanda")
    service = {"tours": "catalog", "payments": "payments", "auth": "auth"}[path.split("/")[2]]

    assert _allow(platform[service] + path, method, customer["accessToken"]) == (405, allow)
    # The gateway learns the services' methods in the background, from their documents.
    for token in (customer["accessToken"], None):
        assert _wait_for_405(platform["gateway"] + path, method, token) == allow


def _wait_for_405(url: str, method: str, token: str | None) -> str | None:
    """Polled with a deadline (these tests call from outside any event loop)."""
    deadline = time.monotonic() + 15
    while True:
        status, allow = _allow(url, method, token)
        if status == 405 or time.monotonic() > deadline:
            assert status == 405, f"{method} {url} answered {status}"
            return allow
        time.sleep(0.1)
