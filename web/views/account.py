"""Register, log in and out, the profile, the visitor's notifications, and the language and
currency they chose."""

from __future__ import annotations

import contextlib
from typing import Any

from aiohttp import web

from web.clients import API, Caller
from web.config import LOCALES
from web.errors import ApiError
from web.i18n import gettext as _
from web.pages import render
from web.settings import SETTINGS
from web.visitor import caller, flash, form, on_behalf, redirect, require_user, safe_next, session


def field_message(field: str, code: str, message: str) -> str:
    """The API's words for a field, in the visitor's language where we know the rule."""
    known = {
        "password": _("Use 8 to 128 characters, with a lowercase letter, an uppercase letter "
                      "and a digit."),
        "email": _("Enter a valid e-mail address, such as ada@example.com."),
        "phone": _("Enter an international phone number, such as +33612345678."),
        "contact.email": _("Enter a valid e-mail address, such as ada@example.com."),
        "contact.phone": _("Enter an international phone number, such as +33612345678."),
        "contact.name": _("Enter the name of the person we should contact."),
        "firstName": _("Enter your first name."),
        "lastName": _("Enter your last name."),
    }
    return known.get(field, message)


def refusal(exc: ApiError) -> str:
    """A whole-form message for an API refusal."""
    messages = {
        "INVALID_CREDENTIALS": _("The e-mail address or the password is not right."),
        "ACCOUNT_DISABLED": _("This account is disabled. Contact us to enable it again."),
        "RATE_LIMITED": _("Too many attempts from your connection. Wait a few minutes, then try "
                          "again."),
        "EMAIL_EXISTS": _("An account already uses this e-mail address. Log in instead?"),
        "VALIDATION_ERROR": _("Some fields need your attention."),
    }
    return messages.get(exc.code, exc.message)


def form_errors(exc: ApiError) -> dict[str, str]:
    return {field: field_message(field, exc.code, message)
            for field, message in exc.field_errors().items()}


async def login_page(request: web.Request) -> web.Response:
    if session(request).user:
        raise redirect(safe_next(request.query.get("next")))
    return render(request, "login.html", {
        "next": safe_next(request.query.get("next")), "email": "", "error": None})


async def login(request: web.Request) -> web.Response:
    fields = await form(request)
    target = safe_next(fields.get("next"))
    email = fields.get("email", "").strip()
    try:
        answer = await request.app[API].login(caller(request, signed_in=False), email,
                                              fields.get("password", ""))
    except ApiError as exc:
        return render(request, "login.html", {"next": target, "email": email,
                                              "error": refusal(exc)}, status=exc.status)
    session(request).sign_in(answer["user"], answer)
    flash(request, _("Welcome back, %(name)s.") % {"name": answer["user"]["firstName"]})
    raise redirect(target)


REGISTER_FIELDS = ("firstName", "lastName", "email", "phone")


async def register_page(request: web.Request) -> web.Response:
    return render(request, "register.html", {
        "next": safe_next(request.query.get("next")), "values": {}, "errors": {},
        "error": None})


async def register(request: web.Request) -> web.Response:
    fields = await form(request)
    target = safe_next(fields.get("next"))
    values = {k: fields.get(k, "").strip() for k in REGISTER_FIELDS}
    errors: dict[str, str] = {}
    if fields.get("password", "") != fields.get("confirm", ""):
        errors["confirm"] = _("The two passwords differ.")
    body: dict[str, Any] = {k: v for k, v in values.items() if v}
    body["password"] = fields.get("password", "")
    if not errors:
        try:
            answer = await request.app[API].register(caller(request, signed_in=False), body)
        except ApiError as exc:
            errors = form_errors(exc)
            if exc.code == "EMAIL_EXISTS":
                errors["email"] = refusal(exc)
            return render(request, "register.html", {
                "next": target, "values": values, "errors": errors,
                "error": refusal(exc)}, status=exc.status)
        session(request).sign_in(answer["user"], answer)
        flash(request, _("Welcome to tourbook, %(name)s!") % {"name": values["firstName"]},
              "success")
        raise redirect(target)
    return render(request, "register.html", {"next": target, "values": values,
                                             "errors": errors, "error": None}, status=400)


async def logout(request: web.Request) -> web.Response:
    await form(request)
    if session(request).user:
        # An API that already ended the session refuses; ours ends below all the same.
        with contextlib.suppress(ApiError):
            await on_behalf(request, request.app[API].logout)
        session(request).sign_out()
    flash(request, _("You are logged out."))
    raise redirect("/")


async def profile_page(request: web.Request) -> web.Response:
    profile = await on_behalf(request, request.app[API].profile)
    return render(request, "profile.html", {"profile": profile, "errors": {}})


async def profile(request: web.Request) -> web.Response:
    require_user(request)
    fields = await form(request)
    changes: dict[str, Any] = {
        "firstName": fields.get("firstName", "").strip(),
        "lastName": fields.get("lastName", "").strip(),
        "phone": fields.get("phone", "").strip() or None,
        "notificationPreferences": {"email": "notifyEmail" in fields,
                                    "sms": "notifySms" in fields}}

    async def update(visitor: Caller) -> dict[str, Any]:
        return await request.app[API].update_profile(visitor, changes)

    try:
        updated = await on_behalf(request, update)
    except ApiError as exc:
        errors = form_errors(exc)
        if not errors:
            errors["form"] = refusal(exc)
        shown = {**changes, "email": session(request).user["email"]}  # type: ignore[index]
        return render(request, "profile.html", {"profile": shown, "errors": errors},
                      status=exc.status)
    current = session(request)
    current.set("user", {**(current.user or {}), "firstName": updated["firstName"],
                         "lastName": updated["lastName"]})
    flash(request, _("Your profile is saved."), "success")
    raise redirect("/profile")


async def notifications(request: web.Request) -> web.Response:
    try:
        page = max(1, int(request.query.get("page", "1")))
    except ValueError:
        page = 1

    async def read(visitor: Caller) -> dict[str, Any]:
        return await request.app[API].notifications(visitor, page=page, limit=20)

    found = await on_behalf(request, read)
    pages = max(1, -(-int(found.get("total", 0)) // 20))
    return render(request, "notifications.html", {
        "items": found.get("items", []), "page": page, "pages": pages})


async def choose_language(request: web.Request) -> web.Response:
    fields = await form(request)
    if fields.get("locale") in LOCALES:
        session(request).set("locale", fields["locale"])
    raise redirect(safe_next(fields.get("next")))


async def choose_currency(request: web.Request) -> web.Response:
    fields = await form(request)
    if fields.get("currency") in request.app[SETTINGS].rates:
        session(request).set("currency", fields["currency"])
    raise redirect(safe_next(fields.get("next")))
