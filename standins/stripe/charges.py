"""Charges: one per payment attempt, `succeeded` or `failed` as the card decides, with the
`charge.succeeded` / `charge.failed` event. Refunds add up on them (`amount_refunded`)."""

from __future__ import annotations

from typing import Any

from standins.stripe.cards import Decline
from standins.stripe.events import Origin
from standins.stripe.ids import new_id
from standins.stripe.listing import filtered_page
from standins.stripe.params import Form
from standins.stripe.payment_methods import card_of
from standins.stripe.state import Account, now

Obj = dict[str, Any]


def attempt(account: Account, intent: Obj, payment_method: Obj, origin: Origin) -> Obj:
    """Charge `payment_method` for `intent`: the charge, and its event already emitted."""
    card = card_of(account, payment_method)
    decline = card.decline
    paid = decline is None
    charge: Obj = {
        "id": new_id("ch"), "object": "charge", "amount": intent["amount"],
        "amount_captured": intent["amount"] if paid else 0, "amount_refunded": 0,
        "application": None, "application_fee": None, "application_fee_amount": None,
        "balance_transaction": new_id("txn") if paid else None,
        "billing_details": payment_method["billing_details"],
        "calculated_statement_descriptor": "STRIPE STAND-IN", "captured": paid,
        "created": now(), "currency": intent["currency"], "customer": intent["customer"],
        "description": intent["description"], "disputed": False,
        "failure_balance_transaction": None,
        "failure_code": decline.code if decline else None,
        "failure_message": decline.message if decline else None,
        "fraud_details": {}, "livemode": False, "metadata": dict(intent["metadata"]),
        "on_behalf_of": None, "outcome": _outcome(decline), "paid": paid,
        "payment_intent": intent["id"], "payment_method": payment_method["id"],
        "payment_method_details": {"card": _card_details(payment_method, decline,
                                                         intent["amount"]),
                                   "type": "card"},
        "receipt_email": intent["receipt_email"], "receipt_number": None, "receipt_url": None,
        "refunded": False, "review": None, "shipping": intent["shipping"],
        "source_transfer": None, "statement_descriptor": None,
        "statement_descriptor_suffix": intent["statement_descriptor_suffix"],
        "status": "succeeded" if paid else "failed", "transfer_data": None,
        "transfer_group": None,
    }
    account.charges[charge["id"]] = charge
    account.events.emit("charge.succeeded" if paid else "charge.failed", charge, origin)
    return charge


def _outcome(decline: Decline | None) -> Obj:
    outcome: Obj = {"advice_code": None, "network_advice_code": None,
                    "network_decline_code": None, "risk_level": "normal", "risk_score": 20}
    if decline is None:
        return {**outcome, "network_status": "approved_by_network", "reason": None,
                "seller_message": "Payment complete.", "type": "authorized"}
    if decline.blocked:
        return {**outcome, "network_status": "not_sent_to_network",
                "reason": "highest_risk_level", "risk_level": "highest", "risk_score": 95,
                "seller_message": "Stripe blocked this payment as too risky.", "type": "blocked"}
    return {**outcome, "network_status": "declined_by_network", "reason": decline.decline_code,
            "seller_message": "The bank did not return any further details with this decline.",
            "type": "issuer_declined"}


def _card_details(payment_method: Obj, decline: Decline | None, amount: int) -> Obj:
    card = payment_method["card"]
    cvc_check = "fail" if decline and decline.decline_code == "incorrect_cvc" else "pass"
    return {
        "amount_authorized": None if decline else amount, "brand": card["brand"],
        "checks": {**card["checks"], "cvc_check": cvc_check}, "country": card["country"],
        "exp_month": card["exp_month"], "exp_year": card["exp_year"],
        "fingerprint": card["fingerprint"], "funding": card["funding"], "last4": card["last4"],
        "network": card["brand"], "three_d_secure": None, "wallet": None,
    }


def retrieve(account: Account, charge_id: str, form: Form) -> Obj:
    form.finish()
    return account.get(charge_id, "ch")


def listing(account: Account, form: Form, url: str) -> Obj:
    return filtered_page(account.charges, form, url, "charge", "payment_intent", "customer")
