"""PaymentIntents: create, retrieve, update, confirm, cancel, list, with Stripe's statuses.

`requires_payment_method` → (a PaymentMethod, not confirmed) `requires_confirmation` → confirm:
`succeeded` with `latest_charge`, or a 402 card error that leaves the intent back in
`requires_payment_method` with `last_payment_error`. Capture is automatic; 3D Secure, manual
capture and `processing` are not emulated. Parameters are all checked before anything changes,
so a refused request leaves no trace (and is not stored against its idempotency key).
"""

from __future__ import annotations

import copy
import re
from typing import Any

from standins.stripe import charges, money, payment_methods
from standins.stripe.errors import CardDeclined, InvalidRequest, NotEmulated
from standins.stripe.events import Origin
from standins.stripe.ids import new_id, random_part
from standins.stripe.listing import filtered_page
from standins.stripe.params import Form, merge_metadata
from standins.stripe.state import Account, now

Obj = dict[str, Any]

CONFIRMABLE = ("requires_payment_method", "requires_confirmation", "requires_action")
UPDATABLE = CONFIRMABLE
CANCELABLE = ("requires_payment_method", "requires_capture", "requires_confirmation",
              "requires_action", "processing")
CANCELLATION_REASONS = ("abandoned", "duplicate", "fraudulent", "requested_by_customer")
RETURN_URL_REQUIRED = (
    "A `return_url` must be specified because this Payment Intent is configured to "
    "automatically accept the payment methods enabled in the Dashboard, some of which may "
    "require a full page redirect to succeed. If you do not want to accept redirect-based "
    "payment methods, set `automatic_payment_methods[enabled]` to `true` and "
    "`automatic_payment_methods[allow_redirects]` to `never` when creating Setup Intents and "
    "Payment Intents.")
MISSING_PAYMENT_METHOD = (
    "You cannot confirm this PaymentIntent because it's missing a payment method. You can "
    "either update the PaymentIntent with a payment method and then confirm it again, or "
    "confirm it again directly with a payment method.")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def create(account: Account, form: Form, origin: Origin) -> Obj:
    amount = form.integer("amount", required=True) or 0
    code = money.currency(form.string("currency", required=True) or "")
    money.check_charge_amount(amount, code)
    automatic, types = _payment_method_types(form)
    capture = form.string("capture_method",
                          choices=("automatic", "automatic_async", "manual"))
    if capture == "manual":
        raise NotEmulated("capture_method=manual (authorise now, capture later)",
                          param="capture_method")
    confirm = form.boolean("confirm") or False
    return_url = form.string("return_url")
    if return_url and not confirm:
        raise InvalidRequest("The parameter `return_url` can only be used with `confirm=true`.",
                             param="return_url")
    customer = form.string("customer")
    description = form.string("description")
    receipt_email = _email(form)
    suffix = form.string("statement_descriptor_suffix")
    metadata = merge_metadata({}, form.metadata())
    payment_method = payment_methods.resolve(account, form)
    form.finish()
    if confirm:
        _check_confirmable(account, automatic, payment_method, return_url)
    intent_id = new_id("pi")
    intent: Obj = {
        "id": intent_id, "object": "payment_intent", "amount": amount, "amount_capturable": 0,
        "amount_details": {"tip": {}}, "amount_received": 0, "application": None,
        "application_fee_amount": None, "automatic_payment_methods": automatic,
        "canceled_at": None, "cancellation_reason": None,
        "capture_method": capture or "automatic_async",
        "client_secret": f"{intent_id}_secret_{random_part(25)}",
        "confirmation_method": "automatic", "created": now(), "currency": code,
        "customer": customer, "description": description,
        "excluded_payment_method_types": None, "last_payment_error": None,
        "latest_charge": None, "livemode": False, "metadata": metadata, "next_action": None,
        "on_behalf_of": None,
        "payment_method": payment_method["id"] if payment_method else None,
        "payment_method_configuration_details": None,
        "payment_method_options": {"card": {"installments": None, "mandate_options": None,
                                            "network": None,
                                            "request_three_d_secure": "automatic"}},
        "payment_method_types": types, "processing": None, "receipt_email": receipt_email,
        "review": None, "setup_future_usage": None, "shipping": None, "source": None,
        "statement_descriptor": None, "statement_descriptor_suffix": suffix,
        "status": "requires_confirmation" if payment_method else "requires_payment_method",
        "transfer_data": None, "transfer_group": None,
    }
    account.payment_intents[intent_id] = intent
    account.events.emit("payment_intent.created", intent, origin)
    if confirm and payment_method is not None:
        _pay(account, intent, payment_method, origin)
    return intent


def retrieve(account: Account, intent_id: str, form: Form) -> Obj:
    form.string("client_secret")  # what a publishable key would send; accepted, not needed
    form.finish()
    return account.get(intent_id, "pi")


def update(account: Account, intent_id: str, form: Form) -> Obj:
    """Metadata, description and receipt e-mail at any time; the amount, currency and
    PaymentMethod only while the intent can still be confirmed. PaymentIntents have no
    `updated` event in Stripe, so none is sent."""
    intent = account.get(intent_id, "pi")
    changes: Obj = {}
    if form.has("metadata"):
        changes["metadata"] = merge_metadata(intent["metadata"], form.metadata(),
                                             cleared=form.raw()["metadata"] == "")
    for key in ("description", "customer", "statement_descriptor_suffix"):
        if form.has(key):
            changes[key] = form.string(key)
    if form.has("receipt_email"):
        changes["receipt_email"] = _email(form)
    payment_changes: Obj = {}
    if form.has("amount"):
        payment_changes["amount"] = form.integer("amount")
    if form.has("currency"):
        payment_changes["currency"] = money.currency(form.string("currency") or "")
    if payment_changes or form.has("payment_method") or form.has("payment_method_data"):
        _require_status(intent, UPDATABLE, "update", "updated")
        payment_method = payment_methods.resolve(account, form)
        if payment_method is not None:
            payment_changes.update(payment_method=payment_method["id"],
                                   status="requires_confirmation")
    form.finish()
    if "amount" in payment_changes or "currency" in payment_changes:
        money.check_charge_amount({**intent, **payment_changes}["amount"],
                                  {**intent, **payment_changes}["currency"])
    intent.update(changes)
    intent.update(payment_changes)
    return intent


def confirm(account: Account, intent_id: str, form: Form, origin: Origin) -> Obj:
    intent = account.get(intent_id, "pi")
    if intent["status"] == "succeeded":
        raise _unexpected_state("You cannot confirm this PaymentIntent because it has already "
                                "succeeded after being previously confirmed.", intent)
    _require_status(intent, CONFIRMABLE, "confirm", "confirmed")
    return_url = form.string("return_url")
    receipt_email = _email(form) if form.has("receipt_email") else intent["receipt_email"]
    payment_method = payment_methods.resolve(account, form)
    form.finish()
    if payment_method is None and intent["payment_method"]:
        payment_method = account.payment_methods[intent["payment_method"]]
    _check_confirmable(account, intent["automatic_payment_methods"], payment_method, return_url,
                       intent=intent)
    assert payment_method is not None  # _check_confirmable refused the intent without one
    intent.update(receipt_email=receipt_email, payment_method=payment_method["id"])
    _pay(account, intent, payment_method, origin)
    return intent


def cancel(account: Account, intent_id: str, form: Form, origin: Origin) -> Obj:
    intent = account.get(intent_id, "pi")
    reason = form.string("cancellation_reason", choices=CANCELLATION_REASONS)
    form.finish()
    _require_status(intent, CANCELABLE, "cancel", "canceled")
    intent.update(status="canceled", canceled_at=now(), cancellation_reason=reason)
    account.events.emit("payment_intent.canceled", intent, origin)
    return intent


def listing(account: Account, form: Form, url: str) -> Obj:
    return filtered_page(account.payment_intents, form, url, "payment_intent", "customer")


def _pay(account: Account, intent: Obj, payment_method: Obj, origin: Origin) -> None:
    """Charge the card: the intent succeeds, or the decline is raised once the failed charge,
    the intent's `last_payment_error` and the events are recorded (Stripe keeps them too)."""
    card = payment_methods.card_of(account, payment_method)
    charge = charges.attempt(account, intent, payment_method, origin)
    intent["latest_charge"] = charge["id"]
    if card.decline is None:
        intent.update(status="succeeded", amount_received=intent["amount"],
                      last_payment_error=None)
        account.events.emit("payment_intent.succeeded", intent, origin)
        return
    decline = card.decline
    error = CardDeclined(decline.message, code=decline.code, decline_code=decline.decline_code,
                         param=decline.param,
                         extra={"charge": charge["id"],
                                "payment_method": copy.deepcopy(payment_method)})
    # Stripe detaches the declined PaymentMethod: the customer must provide another.
    intent.update(status="requires_payment_method", payment_method=None,
                  last_payment_error=error.body()["error"])
    account.events.emit("payment_intent.payment_failed", intent, origin)
    error.extra["payment_intent"] = copy.deepcopy(intent)
    raise error


def _payment_method_types(form: Form) -> tuple[Obj | None, list[str]]:
    """(`automatic_payment_methods`, `payment_method_types`). Without either, automatic payment
    methods are on, as in every API version since 2023-08-16."""
    automatic = form.nested("automatic_payment_methods")
    types = form.strings("payment_method_types")
    if automatic is not None and types is not None:
        raise InvalidRequest("You may only specify one of these parameters: "
                             "automatic_payment_methods, payment_method_types.")
    if types is not None:
        others = [kind for kind in types if kind != "card"]
        if others or not types:
            raise NotEmulated(f"payment_method_types {others or types} (only card)",
                              param="payment_method_types")
        return None, types
    if automatic is None:
        return {"allow_redirects": "always", "enabled": True}, ["card"]
    enabled = automatic.boolean("enabled")
    if enabled is None:
        raise InvalidRequest("Missing required param: automatic_payment_methods[enabled].",
                             code="parameter_missing", param="automatic_payment_methods[enabled]")
    allow = automatic.string("allow_redirects", choices=("always", "never")) or "always"
    return ({"allow_redirects": allow, "enabled": True} if enabled else None), ["card"]


def _check_confirmable(account: Account, automatic: Obj | None, payment_method: Obj | None,
                       return_url: str | None, *, intent: Obj | None = None) -> None:
    """Refuse a confirmation before it changes anything."""
    extra = {"payment_intent": copy.deepcopy(intent)} if intent else None
    if payment_method is None:
        raise InvalidRequest(MISSING_PAYMENT_METHOD, code="payment_intent_unexpected_state",
                             extra=extra)
    # Stripe asks where to send a customer back even for a card, which never redirects.
    if automatic and automatic["allow_redirects"] != "never" and not return_url:
        raise InvalidRequest(RETURN_URL_REQUIRED, extra=extra)
    if payment_methods.card_of(account, payment_method).needs_authentication:
        raise NotEmulated("3D Secure authentication (the `requires_action` status)",
                          param="payment_method")


def _require_status(intent: Obj, allowed: tuple[str, ...], action: str, done: str) -> None:
    if intent["status"] not in allowed:
        raise _unexpected_state(
            f"You cannot {action} this PaymentIntent because it has a status of "
            f"{intent['status']}. Only a PaymentIntent with one of the following statuses may "
            f"be {done}: {', '.join(allowed)}.", intent)


def _unexpected_state(message: str, intent: Obj) -> InvalidRequest:
    return InvalidRequest(message, code="payment_intent_unexpected_state",
                          extra={"payment_intent": copy.deepcopy(intent)})


def _email(form: Form) -> str | None:
    value = form.string("receipt_email")
    if value is not None and not _EMAIL.match(value):
        raise InvalidRequest(f"Invalid email address: {value}", code="email_invalid",
                             param="receipt_email")
    return value
