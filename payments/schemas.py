"""payments' wire models: what requests must contain and what responses look like."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import asyncpg
from pydantic import Field, StringConstraints

from common.http import Schema
from payments.states import REFUND_REASONS, PaymentStatus

# Far above any booking total; only keeps absurd numbers out of the database.
MAX_AMOUNT = 10**12
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class ConfigOut(Schema):
    publishable_key: str
    mode: Literal["live", "test"]


class CreateIntentIn(Schema):
    booking_id: uuid.UUID


class IntentOut(Schema):
    client_secret: str = Field(description=(
        "For Stripe.js to confirm the payment in the browser; never log or store it"))
    payment_intent_id: str
    payment_id: uuid.UUID
    amount: int = Field(description="The booking's total, minor units")
    currency: str


class RefundIn(Schema):
    amount: int | None = Field(None, strict=True, ge=1, le=MAX_AMOUNT, description=(
        "Minor units; default: everything not refunded yet"))
    reason: Reason | None = Field(None, description=(
        f"One of Stripe's reasons ({', '.join(REFUND_REASONS)}) is sent to Stripe as such; "
        "any other text is kept as a note (ours, and in Stripe's metadata)"))


class AmountIn(Schema):
    amount: int = Field(strict=True, ge=1, le=MAX_AMOUNT, description=(
        "The booking's new total, minor units"))
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = Field(
        description="ISO 4217, upper case")


class AmountOut(Schema):
    booking_id: uuid.UUID
    amount: int
    currency: str
    payment_intent_id: str | None = Field(description=(
        "The booking's open intent, now asking this amount; null when it has none (yet)"))
    action: Literal["none", "updated", "replaced"] = Field(description=(
        "none: nothing to change (no open intent, or it asks this amount already); updated: "
        "the open attempt (and its intent at Stripe) now asks this amount; replaced (a new "
        "intent instead of the open one) is part of the contract, and payments does not "
        "answer it: Stripe lets the open intent change"))


class ListQuery(Schema):
    page: int = Field(1, ge=1, le=100_000)
    limit: int = Field(20, ge=1, le=100)


class PaymentQuery(ListQuery):
    status: PaymentStatus | None = None
    booking_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = None
    anomaly: bool | None = Field(None, description=(
        "true: only payments with an unresolved anomaly; false: only those without"))


class ResolveIn(Schema):
    note: Reason = Field(description="What was done about it, kept with the anomaly")


class RefundOut(Schema):
    id: uuid.UUID
    stripe_refund_id: str | None
    amount: int
    status: Literal["requested", "pending", "requires_action", "succeeded", "failed",
                    "canceled"]
    reason: str | None
    note: str | None
    source: Literal["admin", "cancellation", "stripe"]
    failure_message: str | None
    created_at: datetime


class AnomalyOut(Schema):
    id: uuid.UUID
    kind: Literal["amount_mismatch", "refund_exceeds_payment"] = Field(description=(
        "amount_mismatch: the intent succeeded at another amount or currency (the payment is "
        "mismatched, the booking unpaid); refund_exceeds_payment: Stripe reported refunds "
        "beyond what was paid (left out of refundedAmount)"))
    expected_amount: int = Field(description="What our record says, minor units")
    expected_currency: str
    observed_amount: int = Field(description="What Stripe reported, minor units")
    observed_currency: str
    stripe_object_id: str = Field(description="The intent, refund or charge at fault")
    stripe_event_id: str | None = Field(description=(
        "The webhook event that reported it; null when read from Stripe by payments itself"))
    detected_at: datetime
    resolved_at: datetime | None
    resolution: str | None = Field(description="`refunded`, or the note of who resolved it")
    resolved_by: uuid.UUID | None


class PaymentOut(Schema):
    id: uuid.UUID
    booking_id: uuid.UUID
    user_id: uuid.UUID
    attempt: int
    payment_intent_id: str | None
    amount: int = Field(description="Minor units, the booking's total")
    currency: str
    status: PaymentStatus
    refunded_amount: int = Field(description="Sum of the refunds Stripe took on, minor units")
    failure_message: str | None
    refunds: list[RefundOut]
    anomalies: list[AnomalyOut] = Field(description=(
        "What Stripe reported that was refused for this payment, oldest first"))
    created_at: datetime
    updated_at: datetime


class PaymentListOut(Schema):
    items: list[PaymentOut]
    page: int
    limit: int
    total: int


class BookingPaymentsOut(Schema):
    items: list[PaymentOut] = Field(description="The booking's payment attempts, newest first")


class RefundedOut(Schema):
    refund: RefundOut
    payment: PaymentOut


class WebhookOut(Schema):
    received: bool
    outcome: Literal["applied", "duplicate", "ignored"]


def refund_out(refund: asyncpg.Record) -> RefundOut:
    return RefundOut(
        id=refund["id"], stripe_refund_id=refund["stripe_refund_id"], amount=refund["amount"],
        status=refund["status"], reason=refund["reason"], note=refund["note"],
        source=refund["source"], failure_message=refund["failure_message"],
        created_at=refund["created_at"])


def anomaly_out(anomaly: asyncpg.Record) -> AnomalyOut:
    return AnomalyOut(
        id=anomaly["id"], kind=anomaly["kind"], expected_amount=anomaly["expected_amount"],
        expected_currency=anomaly["expected_currency"],
        observed_amount=anomaly["observed_amount"],
        observed_currency=anomaly["observed_currency"],
        stripe_object_id=anomaly["stripe_object_id"],
        stripe_event_id=anomaly["stripe_event_id"], detected_at=anomaly["detected_at"],
        resolved_at=anomaly["resolved_at"], resolution=anomaly["resolution"],
        resolved_by=anomaly["resolved_by"])


def payment_out(payment: asyncpg.Record, refunds: list[asyncpg.Record],
                anomalies: list[asyncpg.Record]) -> PaymentOut:
    return PaymentOut(
        id=payment["id"], booking_id=payment["booking_id"], user_id=payment["user_id"],
        attempt=payment["attempt"], payment_intent_id=payment["stripe_payment_intent_id"],
        amount=payment["amount"], currency=payment["currency"], status=payment["status"],
        refunded_amount=payment["refunded_amount"], failure_message=payment["failure_message"],
        refunds=[refund_out(r) for r in refunds if r["payment_id"] == payment["id"]],
        anomalies=[anomaly_out(a) for a in anomalies if a["payment_id"] == payment["id"]],
        created_at=payment["created_at"], updated_at=payment["updated_at"])
