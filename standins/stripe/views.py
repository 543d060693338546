"""Handlers: read the request's parameters, call the resource's module, answer its object (with
`expand[]` applied). Errors are raised as StripeError and rendered by the middleware."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from standins.stripe import charges, events, payment_intents, refunds, webhook_endpoints
from standins.stripe.app_keys import ACCOUNT, ENDPOINTS
from standins.stripe.listing import expand
from standins.stripe.middleware import ORIGIN, PARAMS, json_response
from standins.stripe.params import Form

Obj = dict[str, Any]


def _read(request: web.Request) -> tuple[Form, list[str]]:
    """The request's parameters, and the expansions it asks for (read first: every endpoint
    takes `expand`)."""
    form = Form(request[PARAMS])
    return form, form.strings("expand") or []


def _answer(request: web.Request, obj: Obj, paths: list[str]) -> web.Response:
    return json_response(expand(obj, paths, request.app[ACCOUNT].find) if paths else obj)


def _id(request: web.Request) -> str:
    return request.match_info["id"]


async def create_payment_intent(request: web.Request) -> web.Response:
    form, paths = _read(request)
    intent = payment_intents.create(request.app[ACCOUNT], form, request[ORIGIN])
    return _answer(request, intent, paths)


async def list_payment_intents(request: web.Request) -> web.Response:
    form, paths = _read(request)
    return _answer(request, payment_intents.listing(request.app[ACCOUNT], form, request.path),
                   paths)


async def retrieve_payment_intent(request: web.Request) -> web.Response:
    form, paths = _read(request)
    return _answer(request, payment_intents.retrieve(request.app[ACCOUNT], _id(request), form),
                   paths)


async def update_payment_intent(request: web.Request) -> web.Response:
    form, paths = _read(request)
    return _answer(request, payment_intents.update(request.app[ACCOUNT], _id(request), form),
                   paths)


async def confirm_payment_intent(request: web.Request) -> web.Response:
    form, paths = _read(request)
    intent = payment_intents.confirm(request.app[ACCOUNT], _id(request), form, request[ORIGIN])
    return _answer(request, intent, paths)


async def cancel_payment_intent(request: web.Request) -> web.Response:
    form, paths = _read(request)
    intent = payment_intents.cancel(request.app[ACCOUNT], _id(request), form, request[ORIGIN])
    return _answer(request, intent, paths)


async def retrieve_charge(request: web.Request) -> web.Response:
    form, paths = _read(request)
    return _answer(request, charges.retrieve(request.app[ACCOUNT], _id(request), form), paths)


async def list_charges(request: web.Request) -> web.Response:
    form, paths = _read(request)
    return _answer(request, charges.listing(request.app[ACCOUNT], form, request.path), paths)


async def retrieve_payment_method(request: web.Request) -> web.Response:
    form, paths = _read(request)
    form.finish()
    return _answer(request, request.app[ACCOUNT].get(_id(request), "pm"), paths)


async def create_refund(request: web.Request) -> web.Response:
    form, paths = _read(request)
    return _answer(request, refunds.create(request.app[ACCOUNT], form, request[ORIGIN]), paths)


async def list_refunds(request: web.Request) -> web.Response:
    form, paths = _read(request)
    return _answer(request, refunds.listing(request.app[ACCOUNT], form, request.path), paths)


async def retrieve_refund(request: web.Request) -> web.Response:
    form, paths = _read(request)
    return _answer(request, refunds.retrieve(request.app[ACCOUNT], _id(request), form), paths)


async def update_refund(request: web.Request) -> web.Response:
    form, paths = _read(request)
    return _answer(request, refunds.update(request.app[ACCOUNT], _id(request), form), paths)


async def retrieve_event(request: web.Request) -> web.Response:
    form, paths = _read(request)
    form.finish()
    return _answer(request, request.app[ACCOUNT].get(_id(request), "evt"), paths)


async def list_events(request: web.Request) -> web.Response:
    form, paths = _read(request)
    return _answer(request, events.listing(request.app[ACCOUNT].events, form, request.path),
                   paths)


async def create_webhook_endpoint(request: web.Request) -> web.Response:
    form, paths = _read(request)
    return _answer(request, webhook_endpoints.create(request.app[ENDPOINTS], form), paths)


async def list_webhook_endpoints(request: web.Request) -> web.Response:
    form, paths = _read(request)
    return _answer(request, webhook_endpoints.listing(request.app[ENDPOINTS], form,
                                                      request.path), paths)


async def retrieve_webhook_endpoint(request: web.Request) -> web.Response:
    form, paths = _read(request)
    return _answer(request, webhook_endpoints.retrieve(request.app[ENDPOINTS], _id(request),
                                                       form), paths)


async def update_webhook_endpoint(request: web.Request) -> web.Response:
    form, paths = _read(request)
    return _answer(request, webhook_endpoints.update(request.app[ENDPOINTS], _id(request),
                                                     form), paths)


async def delete_webhook_endpoint(request: web.Request) -> web.Response:
    form, paths = _read(request)
    return _answer(request, webhook_endpoints.delete(request.app[ENDPOINTS], _id(request),
                                                     form), paths)
