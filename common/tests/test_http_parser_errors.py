"""What aiohttp answers before any middleware runs (a request its parser refuses, a body it cannot
decode) leaves in the envelope, like every other error: JSON `{status, error, message}`, none of
the client's bytes echoed, no library named. Checked byte for byte on raw sockets, against the
demo service served in process and a real auth process (`python -m auth`, the production runner).
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from common.testing import RawResponse, ServiceTestServer, eventually, exchange
from common.tests import demo_service
from common.tests.support import Keys, demo_config

# Every test request carries this marker in the part the parser objects to: it must never come
# back. Nor may the name of a library, or the text aiohttp would have sent.
MARKER = b"zqzq"
NEVER = (MARKER, b"aiohttp", b"Python", b"Brotli", b"brotli", b"zstandard", b"backports",
         b"install", b"Traceback")
TLS_CLIENT_HELLO = bytes.fromhex("16030100f5010000f10303") + MARKER + bytes(40)


def head(method: str = "GET", target: str = "/health", *lines: str) -> bytes:
    text = "\r\n".join([f"{method} {target} HTTP/1.1", "Host: service.test",
                        "Connection: close", *lines])
    return text.encode("latin-1") + b"\r\n\r\n"


def post(path: str, body: bytes, *lines: str) -> bytes:
    return head("POST", path, "Content-Type: application/json",
                f"Content-Length: {len(body)}", *lines) + body


BODY_PATHS = {"demo": "/api/widgets", "auth": "/api/auth/login"}
# name -> (the request, given the target's path for a JSON body; status; error code)
CASES = {
    "a CR inside a header": (lambda p: head("GET", "/health", "X-Note: zqzq\rsmuggled"),
                             400, "MALFORMED_REQUEST"),
    "a NUL inside a header": (lambda p: head("GET", "/health", "X-Note: zqzq\x00"),
                              400, "MALFORMED_REQUEST"),
    "a header over 8 KB": (lambda p: head("GET", "/health", "X-Note: zqzq" + "n" * 9000),
                           431, "REQUEST_HEADERS_TOO_LARGE"),
    "200 headers": (lambda p: head("GET", "/health", *(f"X-Note-{i}: zqzq" for i in range(200))),
                    431, "REQUEST_HEADERS_TOO_LARGE"),
    "an 8 KB URL": (lambda p: head("GET", "/zqzq" + "u" * 9000), 414, "URI_TOO_LONG"),
    "a bad method token": (lambda p: head("G(zqzq)T", "/health"), 400, "MALFORMED_REQUEST"),
    "TLS on the HTTP port": (lambda p: TLS_CLIENT_HELLO, 400, "MALFORMED_REQUEST"),
    "a bad Content-Length": (lambda p: head("POST", p, "Content-Length: zqzq") + b"{}",
                             400, "MALFORMED_REQUEST"),
    "two Content-Lengths": (lambda p: head("POST", p, "Content-Length: 2",
                                           "Content-Length: 3") + b"{}",
                            400, "MALFORMED_REQUEST"),
    "a bad chunk size": (lambda p: head("POST", p, "Transfer-Encoding: chunked")
                         + b"2\r\n{}\r\nzqzq\r\n0\r\n\r\n", 400, "MALFORMED_REQUEST"),
    "a br body": (lambda p: post(p, b"zqzq", "Content-Encoding: br"),
                  415, "UNSUPPORTED_CONTENT_ENCODING"),
    "a zstd body": (lambda p: post(p, b"zqzq", "Content-Encoding: zstd"),
                    415, "UNSUPPORTED_CONTENT_ENCODING"),
    "two codings": (lambda p: post(p, gzip.compress(gzip.compress(b"{}")),
                                   "Content-Encoding: gzip, gzip"),
                    415, "UNSUPPORTED_CONTENT_ENCODING"),
    "a coding nobody decodes": (lambda p: post(p, b"zqzq", "Content-Encoding: compress"),
                                415, "UNSUPPORTED_CONTENT_ENCODING"),
    "a broken gzip body": (lambda p: post(p, b"zqzq, not gzip at all", "Content-Encoding: gzip"),
                           400, "MALFORMED_BODY"),
    "a broken deflate body": (lambda p: post(p, b"zqzq, not deflate", "Content-Encoding: deflate"),
                              400, "MALFORMED_BODY"),
    "an unknown expectation": (lambda p: head("POST", p, "Expect: zqzq", "Content-Length: 2")
                               + b"{}", 417, "EXPECTATION_FAILED"),
}


@pytest.fixture
async def demo_port(keys: Keys) -> AsyncIterator[int]:
    server = ServiceTestServer(demo_service.create_app(demo_config(keys)))
    await server.start_server()
    assert server.port is not None
    yield server.port
    await server.close()


@pytest.fixture(params=["demo", "auth"])
def target(request: pytest.FixtureRequest) -> tuple[int, str]:
    """(port, path of a POST endpoint taking a JSON body) of the service under test."""
    if request.param == "auth":
        url: str = request.getfixturevalue("auth_url")
        return int(url.rsplit(":", 1)[1]), BODY_PATHS["auth"]
    return request.getfixturevalue("demo_port"), BODY_PATHS["demo"]


def assert_envelope(response: RawResponse, status: int, code: str) -> None:
    assert response.status == status, response.raw[:300]
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"status", "error", "message"}
    assert (body["status"], body["error"]) == (status, code)
    for word in NEVER:
        assert word not in response.raw, word


@pytest.mark.parametrize("case", list(CASES))
async def test_every_refusal_before_the_handlers_is_an_envelope_quoting_nothing(
        target: tuple[int, str], case: str) -> None:
    port, path = target
    build, status, code = CASES[case]

    response = await exchange(port, build(path))

    assert_envelope(response, status, code)


async def test_a_415_names_the_codings_that_are_taken(target: tuple[int, str]) -> None:
    port, path = target
    response = await exchange(port, post(path, b"{}", "Content-Encoding: br"))
    assert response.headers["Accept-Encoding"] == "gzip, deflate"


async def test_a_gzip_body_is_still_read(demo_port: int) -> None:
    response = await exchange(demo_port, post(
        "/api/widgets", gzip.compress(b'{"name": "Anvil", "unitPrice": 8999}'),
        "Content-Encoding: gzip"))
    assert response.status == 201
    assert response.json()["name"] == "Anvil"


async def _counted(port: int, route: str) -> dict[str, float]:
    """`http_requests_total` of POST `route` on the service's /metrics, by status."""
    response = await exchange(port, head("GET", "/metrics"))
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(response.body.decode()):
        for sample in family.samples:
            labels = sample.labels
            if (sample.name == "http_requests_total" and labels.get("route") == route
                    and labels.get("method") == "POST"):
                counts[labels["status"]] = sample.value
    return counts


async def test_a_client_that_leaves_mid_body_is_499_never_a_server_error(auth_url: str) -> None:
    """As in production (the service's own process), where aiohttp lets the handler run on
    after the client has gone: the read fails, and that is nobody's fault here."""
    port, path = int(auth_url.rsplit(":", 1)[1]), BODY_PATHS["auth"]
    before = await _counted(port, path)
    for _ in range(3):
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(head("POST", path, "Content-Type: application/json",
                          "Content-Length: 1000") + b'{"email": ')
        await writer.drain()
        writer.transport.abort()

    async def left() -> dict[str, float] | None:
        counts = await _counted(port, path)
        return counts if counts.get("499", 0) - before.get("499", 0) == 3 else None

    counts = await eventually(left, message="three requests counted as 499")
    assert counts.get("500", 0) == before.get("500", 0)
