"""Stand-ins of our own services kept honest: what a small server standing in for a peer answers,
and what it is sent, checked against the OpenAPI document the peer's app serves (schemathesis
for answers, as the API contract tests use it; jsonschema for request bodies)."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import requests
import schemathesis
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.core.transport import Response

_DOCUMENT_URI = "urn:tourbook:peer"


async def served_document(app: web.Application) -> dict[str, Any]:
    """What `app` answers to `GET /openapi.json`, without starting it (building an app does no
    I/O): the peer's own document, not a copy."""
    request = make_mocked_request("GET", "/openapi.json", app=app)
    match = await app.router.resolve(request)
    response = await match.handler(request)
    assert isinstance(response, web.Response) and response.body is not None
    document: dict[str, Any] = json.loads(bytes(response.body))
    return document


def _pointer(*segments: str) -> str:
    return "".join("/" + s.replace("~", "~0").replace("/", "~1") for s in segments)


class PeerContract:
    """One peer's document. `answer` sends a request to its stand-in and fails the test unless
    the answer is one the document lists for the operation, with the documented content type
    and schema (an error in the envelope, its `status` the HTTP one); `request_body` fails it
    unless a body sent to the stand-in is one the peer would accept."""

    def __init__(self, peer: str, document: dict[str, Any]) -> None:
        self.peer, self.document = peer, document
        self.schema = schemathesis.openapi.from_dict(document)
        self.registry: Registry[Any] = Registry().with_resource(
            _DOCUMENT_URI, Resource.from_contents(document, default_specification=DRAFT202012))

    def operation(self, method: str, path: str) -> dict[str, Any]:
        operation: dict[str, Any] | None = self.document["paths"].get(path, {}).get(method.lower())
        assert operation is not None, f"{self.peer} documents no {method} {path}"
        return operation

    async def answer(self, http: aiohttp.ClientSession, method: str, path: str, url: str,
                     **kwargs: Any) -> tuple[int, Any]:
        """`method url` sent to the stand-in, its answer checked as operation `method path` of
        the peer's document: (status, JSON body)."""
        async with http.request(method, url, **kwargs) as resp:
            status, body = resp.status, await resp.read()
            headers: dict[str, list[str]] = {}
            for name, value in resp.headers.items():
                headers.setdefault(name, []).append(value)
        self._check(method, path, Response(status, headers, body,
                                           requests.Request(method, url).prepare(),
                                           elapsed=0.0, verify=True))
        return status, json.loads(body)

    def _check(self, method: str, path: str, response: Response) -> None:
        status, documented = response.status_code, self.operation(method, path)["responses"]
        assert str(status) in documented, (
            f"the stand-in of {self.peer} answers {method} {path} with {status}, which the "
            f"document of {self.peer} does not list ({', '.join(documented)})")
        try:
            self.schema[path][method.upper()].validate_response(response)
        except (Failure, FailureGroup) as exc:
            failures = exc.exceptions if isinstance(exc, FailureGroup) else [exc]
            raise AssertionError(
                f"the stand-in of {self.peer} answers {method} {path} ({status}) otherwise than "
                f"the document of {self.peer} says:\n" + "\n".join(map(str, failures))
            ) from None
        if status >= 400:
            assert json.loads(response.content)["status"] == status, response.content

    def request_body(self, method: str, path: str, body: Any) -> None:
        self.operation(method, path)
        where = _pointer("paths", path, method.lower(), "requestBody", "content",
                         "application/json", "schema")
        validator = Draft202012Validator({"$ref": f"{_DOCUMENT_URI}#{where}"},
                                         registry=self.registry,
                                         format_checker=Draft202012Validator.FORMAT_CHECKER)
        errors = [f"{'/'.join(map(str, e.absolute_path)) or 'body'}: {e.message}"
                  for e in validator.iter_errors(body)]
        assert not errors, (f"{self.peer} would refuse this body of {method} {path}: {body}\n"
                            + "\n".join(errors))

    def query(self, method: str, path: str, query: dict[str, str]) -> None:
        """The names of a query sent to the stand-in are the operation's, its required ones
        given."""
        parameters = {p["name"]: p for p in self.operation(method, path).get("parameters", [])
                      if p["in"] == "query"}
        assert set(query) <= set(parameters), (
            f"{self.peer} reads no {sorted(set(query) - set(parameters))} on {method} {path}")
        missing = [n for n, p in parameters.items() if p.get("required") and n not in query]
        assert not missing, f"{method} {path} to {self.peer} lacks {missing}"
