"""The administrators' pages of user accounts: find one (by name or e-mail, role, status), read it
with its recent bookings, change its role, disable and enable it. Accounts are never deleted."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from web.clients import API, Caller
from web.errors import ApiError, PageNotFound
from web.i18n import gettext as _
from web.pages import render
from web.views.account import refusal
from web.visitor import flash, form, on_behalf, redirect, require

ROLES = ("customer", "manager", "admin")
STATUSES = ("active", "disabled")
PAGE_SIZE = 50


def _page(request: web.Request) -> int:
    try:
        return max(1, int(request.query.get("page", "1")))
    except ValueError:
        return 1


async def users(request: web.Request) -> web.Response:
    require(request, "users")
    page = _page(request)
    chosen = {"q": request.query.get("q", "").strip(),
              "role": request.query.get("role", "") if request.query.get("role") in ROLES
              else "",
              "status": request.query.get("status", "")
              if request.query.get("status") in STATUSES else ""}

    async def read(visitor: Caller) -> dict[str, Any]:
        return await request.app[API].users(visitor, page=page, limit=PAGE_SIZE, **chosen)

    error = None
    try:
        found = await on_behalf(request, read)
    except ApiError as exc:
        if exc.status != 400:
            raise
        found, error = {"items": [], "total": 0}, "; ".join(exc.field_errors().values())
    return render(request, "operator/users.html", {
        "items": found["items"], "total": found["total"], "page": page,
        "pages": max(1, -(-found["total"] // PAGE_SIZE)), "chosen": chosen, "roles": ROLES,
        "error": error})


async def user(request: web.Request) -> web.Response:
    require(request, "users")
    user_id = request.match_info["id"]

    async def read(visitor: Caller) -> dict[str, Any]:
        return await request.app[API].user(visitor, user_id)

    try:
        found = await on_behalf(request, read)
    except ApiError as exc:
        if exc.status in (400, 404):
            raise PageNotFound() from None
        raise
    return render(request, "operator/user.html", {
        "account": found["user"], "bookings": found["bookings"], "roles": ROLES})


async def change_user(request: web.Request) -> web.Response:
    """A new role, or the account disabled or enabled again; the user's tokens stop working
    within seconds (their sessions end on a disable, renew on a role change)."""
    require(request, "users")
    fields = await form(request)
    user_id = request.match_info["id"]
    changes: dict[str, Any] = {}
    if fields.get("role") in ROLES:
        changes["role"] = fields["role"]
    if fields.get("active") in ("true", "false"):
        changes["isActive"] = fields["active"] == "true"
    if not changes:
        raise redirect(f"/operator/users/{user_id}")

    async def write(visitor: Caller) -> dict[str, Any]:
        return await request.app[API].change_user(visitor, user_id, changes)

    try:
        await on_behalf(request, write)
    except ApiError as exc:
        if exc.status == 404:
            raise PageNotFound() from None
        flash(request, _own_account(exc) or refusal(exc), "error")
    else:
        flash(request, _done(changes), "success")
    raise redirect(f"/operator/users/{user_id}")


def _own_account(exc: ApiError) -> str | None:
    if exc.code == "CANNOT_CHANGE_OWN_ACCOUNT":
        return _("You cannot disable your own account or take away your own role; another "
                 "administrator can.")
    return None


def _done(changes: dict[str, Any]) -> str:
    if changes.get("isActive") is False:
        return _("The account is disabled: its sessions end within seconds, and it cannot log "
                 "in until it is enabled again.")
    if changes.get("isActive") is True:
        return _("The account is enabled again: its owner can log in.")
    return _("The role is changed: the user's pages follow it within seconds.")
