"""PaymentMethods made from test cards: a `pm_card_*` id or `payment_method_data[card]` becomes
a new `pm_...`, as in Stripe. The test card behind it decides how a payment with it ends."""

from __future__ import annotations

import datetime
import hashlib
from typing import Any

from standins.stripe.cards import BY_ALIAS, TestCard, card_for_number, luhn_valid
from standins.stripe.errors import CardDeclined, InvalidRequest, NotEmulated, missing, no_such
from standins.stripe.ids import new_id
from standins.stripe.params import Form
from standins.stripe.state import Account, now

Obj = dict[str, Any]
_ADDRESS = ("city", "country", "line1", "line2", "postal_code", "state")


def resolve(account: Account, form: Form) -> Obj | None:
    """The PaymentMethod that `payment_method` or `payment_method_data` names, if either does."""
    named = form.string("payment_method")
    data = form.nested("payment_method_data")
    if named and data is not None:
        raise InvalidRequest("You may only specify one of these parameters: payment_method, "
                             "payment_method_data.")
    if data is not None:
        return _from_data(account, data)
    if named is None:
        return None
    if named in account.payment_methods:
        return account.payment_methods[named]
    card = BY_ALIAS.get(named)
    if card is None:
        raise no_such("PaymentMethod", named, param="payment_method", status=400)
    return _make(account, card, exp_month=12, exp_year=datetime.date.today().year + 3,
                 billing=_billing(None))


def card_of(account: Account, payment_method: Obj) -> TestCard:
    return account.cards[payment_method["id"]]


def _from_data(account: Account, data: Form) -> Obj:
    kind = data.string("type", required=True)
    if kind != "card":
        raise NotEmulated(f"payment_method_data[type]={kind} (only cards)",
                          param="payment_method_data[type]")
    card = data.nested("card")
    if card is None:
        raise missing("payment_method_data[card]")
    number = (card.string("number", required=True) or "").replace(" ", "")
    exp_month = card.integer("exp_month", required=True) or 0
    exp_year = card.integer("exp_year", required=True) or 0
    cvc = card.string("cvc")
    billing = _billing(data.nested("billing_details"))
    metadata = {k: v for k, v in (data.metadata() or {}).items() if v}
    exp_year += 2000 if exp_year < 100 else 0  # Stripe takes two-digit years too
    today = datetime.date.today()
    # Validation errors of card data are card errors (402) in Stripe, not invalid requests.
    if not luhn_valid(number):
        raise CardDeclined("Your card number is incorrect.", code="incorrect_number",
                           param="number")
    if not 1 <= exp_month <= 12:
        raise CardDeclined("Your card's expiration month is invalid.",
                           code="invalid_expiry_month", param="exp_month")
    if (exp_year, exp_month) < (today.year, today.month):
        raise CardDeclined("Your card's expiration year is invalid.",
                           code="invalid_expiry_year", param="exp_year")
    if cvc is not None and not (cvc.isdigit() and len(cvc) in (3, 4)):
        raise CardDeclined("Your card's security code is invalid.", code="invalid_cvc",
                           param="cvc")
    return _make(account, card_for_number(number), exp_month=exp_month, exp_year=exp_year,
                 billing=billing, metadata=metadata)


def _billing(form: Form | None) -> Obj:
    details: Obj = {"address": dict.fromkeys(_ADDRESS), "email": None, "name": None,
                    "phone": None}
    if form is None:
        return details
    for key in ("email", "name", "phone"):
        details[key] = form.string(key)
    address = form.nested("address")
    if address is not None:
        details["address"] = {key: address.string(key) for key in _ADDRESS}
    return details


def _make(account: Account, card: TestCard, *, exp_month: int, exp_year: int,
          billing: Obj, metadata: dict[str, str] | None = None) -> Obj:
    payment_method: Obj = {
        "id": new_id("pm"), "object": "payment_method", "allow_redisplay": "unspecified",
        "billing_details": billing,
        "card": {
            "brand": card.brand,
            "checks": {"address_line1_check": None, "address_postal_code_check": None,
                       "cvc_check": None},
            "country": card.country, "display_brand": card.brand, "exp_month": exp_month,
            "exp_year": exp_year,
            # The same card always has the same fingerprint, as in Stripe.
            "fingerprint": hashlib.sha256(card.number.encode()).hexdigest()[:16],
            "funding": card.funding, "generated_from": None, "last4": card.number[-4:],
            "networks": {"available": [card.brand], "preferred": None},
            "regulated_status": "unregulated", "three_d_secure_usage": {"supported": True},
            "wallet": None,
        },
        "created": now(), "customer": None, "livemode": False, "metadata": metadata or {},
        "type": "card",
    }
    account.payment_methods[payment_method["id"]] = payment_method
    account.cards[payment_method["id"]] = card
    return payment_method
