"""Refunds of a succeeded payment, whole or in parts. They succeed at once, add up on the charge
(`amount_refunded`, then `refunded`), and send `refund.created` and `charge.refunded`."""

from __future__ import annotations

from typing import Any

from standins.stripe.errors import InvalidRequest
from standins.stripe.events import Origin
from standins.stripe.ids import new_id
from standins.stripe.listing import filtered_page
from standins.stripe.money import show
from standins.stripe.params import Form, merge_metadata
from standins.stripe.state import Account, now

Obj = dict[str, Any]
REASONS = ("duplicate", "fraudulent", "requested_by_customer")


def create(account: Account, form: Form, origin: Origin) -> Obj:
    intent_id = form.string("payment_intent")
    charge_id = form.string("charge")
    amount = form.integer("amount")
    reason = form.string("reason", choices=REASONS)
    metadata = merge_metadata({}, form.metadata())
    form.finish()
    charge = _refundable_charge(account, intent_id, charge_id)
    left = charge["amount"] - charge["amount_refunded"]
    if left == 0:
        raise InvalidRequest(f"Charge {charge['id']} has already been refunded.",
                             code="charge_already_refunded")
    amount = left if amount is None else amount
    if amount <= 0:
        raise InvalidRequest("Invalid positive integer", code="parameter_invalid_integer",
                             param="amount")
    if amount > left:
        raise InvalidRequest(
            f"Refund amount ({show(amount, charge['currency'])}) is greater than unrefunded "
            f"amount on charge ({show(left, charge['currency'])})", code="amount_too_large",
            param="amount")
    refund: Obj = {
        "id": new_id("re"), "object": "refund", "amount": amount,
        "balance_transaction": new_id("txn"), "charge": charge["id"], "created": now(),
        "currency": charge["currency"],
        "destination_details": {"card": {"reference_status": "pending",
                                         "reference_type": "acquirer_reference_number",
                                         "type": "refund"}, "type": "card"},
        "metadata": metadata, "payment_intent": charge["payment_intent"], "reason": reason,
        "receipt_number": None, "source_transfer_reversal": None, "status": "succeeded",
        "transfer_reversal": None,
    }
    account.refunds[refund["id"]] = refund
    previous: Obj = {"amount_refunded": charge["amount_refunded"]}
    charge["amount_refunded"] += amount
    if charge["amount_refunded"] == charge["amount"]:
        previous["refunded"], charge["refunded"] = False, True
    account.events.emit("charge.refunded", charge, origin, previous=previous)
    account.events.emit("refund.created", refund, origin)
    return refund


def retrieve(account: Account, refund_id: str, form: Form) -> Obj:
    form.finish()
    return account.get(refund_id, "re")


def update(account: Account, refund_id: str, form: Form) -> Obj:
    refund = account.get(refund_id, "re")
    update = form.metadata()
    form.finish()
    refund["metadata"] = merge_metadata(refund["metadata"], update,
                                        cleared=form.raw().get("metadata") == "")
    return refund


def listing(account: Account, form: Form, url: str) -> Obj:
    return filtered_page(account.refunds, form, url, "refund", "payment_intent", "charge")


def _refundable_charge(account: Account, intent_id: str | None, charge_id: str | None) -> Obj:
    if intent_id is None and charge_id is None:
        raise InvalidRequest("You must pass either `charge` or `payment_intent` to create a "
                             "refund.", code="parameter_missing", param="payment_intent")
    if charge_id is not None:
        charge = account.get(charge_id, "ch", param="charge", status=400)
        if intent_id is not None and charge["payment_intent"] != intent_id:
            raise InvalidRequest(f"The charge {charge_id} does not belong to the "
                                 f"PaymentIntent {intent_id}.", param="charge")
        if charge["status"] != "succeeded":
            raise InvalidRequest(f"Charge {charge_id} has not succeeded and cannot be "
                                 "refunded.", code="charge_not_refundable", param="charge")
        return charge
    assert intent_id is not None
    intent = account.get(intent_id, "pi", param="payment_intent", status=400)
    if intent["status"] != "succeeded" or intent["latest_charge"] is None:
        raise InvalidRequest(f"This PaymentIntent ({intent_id}) does not have a successful "
                             "charge to refund.", param="payment_intent")
    return account.charges[intent["latest_charge"]]
