"""Every failure reaches the client as the envelope `{status, error, message, details?}`, and every
response carries a request id."""

from __future__ import annotations

import uuid

import pytest


def is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


async def test_a_service_error_becomes_its_status_and_code(client):
    resp = await client.get("/api/widgets/nope")
    assert resp.status == 404
    assert await resp.json() == {"status": 404, "error": "WIDGET_NOT_FOUND",
                                 "message": "No such widget"}
    assert resp.content_type == "application/json"


async def test_error_details_are_passed_on(client):
    resp = await client.get("/api/widgets/locked")
    assert await resp.json() == {"status": 409, "error": "WIDGET_LOCKED",
                                 "message": "The widget is locked",
                                 "details": {"widgetId": "locked"}}


async def test_an_unknown_route_is_404_not_found(client):
    resp = await client.get("/api/no/such/thing")
    assert resp.status == 404
    assert await resp.json() == {"status": 404, "error": "NOT_FOUND",
                                 "message": "No route matches this path"}


@pytest.mark.parametrize(("method", "path", "allow"), [
    ("DELETE", "/api/widgets", "GET, HEAD, POST"),
    ("PUT", "/api/widgets/w1", "GET, HEAD"),
    ("OPTIONS", "/api/widgets/w1/archive", "POST"),
    # A concrete path beside a template (`/api/widgets/{id}`) has its own methods, as OpenAPI
    # matches paths: aiohttp listed GET, HEAD, POST and sent GET to the template's handler.
    ("OPTIONS", "/api/widgets/bulk", "POST"),
    ("GET", "/api/widgets/bulk", "POST"),
])
async def test_a_wrong_method_is_405_with_exactly_the_paths_methods(client, method, path,
                                                                     allow):
    resp = await client.request(method, path)
    assert resp.status == 405
    assert await resp.json() == {"status": 405, "error": "METHOD_NOT_ALLOWED",
                                 "message": "This method is not allowed on this path"}
    assert resp.headers["Allow"] == allow


async def test_the_concrete_path_still_answers_its_own_method(client):
    resp = await client.post("/api/widgets/bulk", json={"name": "Anvil", "unitPrice": 1})
    assert resp.status == 202
    assert (await client.get("/api/widgets/w1")).status == 200


async def test_an_unexpected_exception_is_a_bare_500(client):
    resp = await client.get("/api/boom")
    assert resp.status == 500
    assert await resp.json() == {"status": 500, "error": "INTERNAL_ERROR",
                                 "message": "An unexpected error occurred"}
    text = await resp.text()
    assert "hunter2" not in text and "Traceback" not in text and "RuntimeError" not in text


async def test_a_redirect_is_not_an_error(client):
    resp = await client.get("/api/redirect", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == "/api/widgets"
    assert is_uuid(resp.headers["X-Request-ID"])


async def test_a_sane_request_id_is_kept_and_returned(client):
    for path in ("/api/widgets/w1", "/api/widgets/nope", "/nowhere", "/api/boom", "/health"):
        resp = await client.get(path, headers={"X-Request-ID": "gw-1234.abc:9_x-Y"})
        assert resp.headers["X-Request-ID"] == "gw-1234.abc:9_x-Y", path


@pytest.mark.parametrize("incoming", [None, "", "x" * 129, "has space", "semi;colon", "é"])
async def test_a_missing_or_odd_request_id_is_replaced_by_a_fresh_one(client, incoming):
    headers = {} if incoming is None else {"X-Request-ID": incoming}
    first = await client.get("/api/widgets/w1", headers=headers)
    second = await client.get("/api/widgets/w1", headers=headers)
    ids = [first.headers["X-Request-ID"], second.headers["X-Request-ID"]]
    assert all(is_uuid(i) for i in ids) and ids[0] != ids[1]
