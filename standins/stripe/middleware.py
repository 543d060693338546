"""The Stripe API's manners on `/v1/*`: the secret key (Bearer, or Basic as `curl -u` sends it),
the form parameters, `Idempotency-Key`, errors in Stripe's shape, and the `Request-Id` and
`Stripe-Version` headers on every answer. Other paths (`/health`...) pass untouched."""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any
from urllib.parse import parse_qsl

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from common.http.middleware import REQUEST_ID_KEY
from common.http.routing import MethodNotAllowed
from standins.stripe.app_keys import ACCOUNT, IDEMPOTENCY
from standins.stripe.errors import ApiError, AuthenticationFailed, NotFound, StripeError
from standins.stripe.events import Origin
from standins.stripe.idempotency import Attempt, should_save
from standins.stripe.ids import random_part
from standins.stripe.params import decode

log = structlog.get_logger("stripe.api")
PARAMS: web.RequestKey[dict[str, Any]] = web.RequestKey("params", dict)
ORIGIN: web.RequestKey[Origin] = web.RequestKey("origin", Origin)
_TEST_KEY = re.compile(r"^(sk|rk)_test_\S+$")
NO_KEY = ("You did not provide an API key. You need to provide your API key in the "
          "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
          "YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or we "
          "can help at https://support.stripe.com/.")


def json_response(body: object, status: int = 200) -> web.Response:
    # Stripe answers pretty-printed JSON.
    return web.Response(text=json.dumps(body, indent=2), status=status,
                        content_type="application/json")


def error_response(error: StripeError) -> web.Response:
    return json_response(error.body(), status=error.status)


@web.middleware
async def stripe_api(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith("/v1/"):
        return await handler(request)
    # The id of our own request log line, so that an SDK error ("Request req_...: ...") leads
    # to it.
    request_id = "req_" + request.get(REQUEST_ID_KEY, random_part(24))
    key = request.headers.get("Idempotency-Key") if request.method == "POST" else None
    response: web.StreamResponse
    try:
        api_key = _api_key(request)
        params = await _params(request)
        request[PARAMS] = params
        request[ORIGIN] = Origin(request_id, key)
        if key is None:
            response = await _answer(request, handler)
        else:
            response = await _idempotent(request, handler, api_key=api_key, key=key,
                                         attempt=Attempt(request.method, request.path, params),
                                         request_id=request_id)
    except StripeError as exc:
        response = error_response(exc)
    response.headers["Request-Id"] = request_id
    response.headers["Stripe-Version"] = (request.headers.get("Stripe-Version")
                                          or request.app[ACCOUNT].events.api_version)
    if key is not None:
        response.headers["Idempotency-Key"] = key
    return response


async def _idempotent(request: web.Request, handler: Handler, *, api_key: str, key: str,
                      attempt: Attempt, request_id: str) -> web.StreamResponse:
    store = request.app[IDEMPOTENCY]
    saved = store.check(api_key, key, attempt)
    if saved is not None:
        replay = web.Response(body=saved.body, status=saved.status,
                              content_type="application/json")
        replay.headers["Idempotent-Replayed"] = "true"
        replay.headers["Original-Request"] = saved.request_id
        return replay
    store.start(api_key, key)
    record = None
    try:
        response = await _answer(request, handler)
        body = response.body if isinstance(response, web.Response) else None
        if should_save(response.status) and isinstance(body, bytes):
            record = store.saved(attempt, response.status, body, request_id)
    finally:
        store.finish(api_key, key, record)
    return response


async def _answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The handler's answer, with its errors (and the router's) turned into Stripe's shape."""
    try:
        return await handler(request)
    except StripeError as exc:
        return error_response(exc)
    except (web.HTTPNotFound, web.HTTPMethodNotAllowed, MethodNotAllowed):
        return error_response(NotFound(
            f"Unrecognized request URL ({request.method}: {request.path}). Please see "
            "https://stripe.com/docs or we can help at https://support.stripe.com/."))
    except web.HTTPException:
        raise
    except Exception:
        # Saved against the idempotency key like any answer that ran, as Stripe saves its 500s.
        log.exception("stripe_standin_failed", method=request.method, path=request.path)
        return error_response(ApiError("The Stripe stand-in failed on this request; its log "
                                       "has the details."))


def _api_key(request: web.Request) -> str:
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    key = ""
    if scheme.lower() == "bearer":
        key = credentials.strip()
    elif scheme.lower() == "basic":
        try:
            key = base64.b64decode(credentials.strip()).decode().partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            key = ""
    if not key:
        raise AuthenticationFailed(NO_KEY)
    if key.startswith("pk_"):
        raise AuthenticationFailed("This API call cannot be made with a publishable API key. "
                                   "Please use a secret API key.")
    if not _TEST_KEY.match(key):
        hint = (" (the Stripe stand-in takes test keys only: sk_test_... or rk_test_...)"
                if "_live_" in key else "")
        raise AuthenticationFailed(f"Invalid API Key provided: {_masked(key)}{hint}")
    return key


def _masked(key: str) -> str:
    return key[:8] + "*" * max(len(key) - 12, 0) + key[-4:] if len(key) > 12 else "*" * len(key)


async def _params(request: web.Request) -> dict[str, Any]:
    text = await request.text() if request.method == "POST" else request.query_string
    return decode(parse_qsl(text, keep_blank_values=True))
