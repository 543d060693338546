"""The operators' list of every payment, filtered by status, booking, user and anomaly; what Stripe
reported that was refused (an intent paid at another amount, refunds beyond what was paid) is
shown on its payment, and an administrator resolves it with a note of what was done."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from web.clients import API, Caller
from web.errors import ApiError
from web.i18n import gettext as _
from web.pages import render
from web.views.account import refusal
from web.visitor import flash, form, on_behalf, redirect, require, require_operator, safe_next

STATUSES = ("pending", "processing", "succeeded", "failed", "canceled", "refunded",
            "partially_refunded", "mismatched")
PAGE_SIZE = 50


def _uuid(text: str) -> str:
    """A filter by id: one that is not an id matches nothing, rather than a 400 page."""
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return ""


def filters(query: Any) -> dict[str, str]:
    """The list's filters as the page's query gives them, each either valid or left out."""
    return {"status": query.get("status", "") if query.get("status") in STATUSES else "",
              "anomaly": "true" if query.get("anomaly") == "true" else "",
              "bookingId": _uuid(query.get("bookingId", "").strip()),
              "userId": _uuid(query.get("userId", "").strip())}


def unresolved(payment: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for a in payment.get("anomalies") or [] if not a.get("resolvedAt")]


async def payments(request: web.Request) -> web.Response:
    require_operator(request)
    try:
        page = max(1, int(request.query.get("page", "1")))
    except ValueError:
        page = 1
    chosen = filters(request.query)
    wanted = {k: v for k, v in chosen.items() if v}

    async def read(visitor: Caller) -> dict[str, Any]:
        return await request.app[API].payments(visitor, page=page, limit=PAGE_SIZE, **wanted)

    found = await on_behalf(request, read)
    items = [{**p, "unresolved": unresolved(p)} for p in found["items"]]
    return render(request, "operator/payments.html", {
        "items": items, "total": found["total"], "page": page,
        "pages": max(1, -(-found["total"] // PAGE_SIZE)), "chosen": chosen,
        "statuses": STATUSES, "query": urlencode(wanted), "here": request.path_qs})


async def resolve(request: web.Request) -> web.Response:
    """An administrator's note of what was done about a payment's anomalies."""
    require(request, "resolve")
    fields = await form(request)
    back = safe_next(fields.get("next"), "/operator/payments")
    note = fields.get("note", "").strip()
    if not note:
        flash(request, _("Say what was done about it: the note is kept with the anomaly."),
              "error")
        raise redirect(back)

    async def run(visitor: Caller) -> dict[str, Any]:
        return await request.app[API].resolve_anomalies(visitor, request.match_info["id"], note)

    try:
        await on_behalf(request, run)
    except ApiError as exc:
        if exc.code == "NO_UNRESOLVED_ANOMALY":
            flash(request, _("Nothing is left to resolve on this payment."))
        else:
            flash(request, refusal(exc), "error")
    else:
        flash(request, _("The anomaly is resolved; your note is kept with it."), "success")
    raise redirect(back)
