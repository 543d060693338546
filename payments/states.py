"""A payment's status, what a Stripe PaymentIntent's status means for it, and which moves are
allowed. Stripe does not deliver events in order: a move the table refuses (a failure reported
after the success, an old snapshot) changes nothing."""

from __future__ import annotations

from enum import StrEnum


class PaymentStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    REFUNDED = "refunded"
    PARTIALLY_REFUNDED = "partially_refunded"
    # The intent succeeded at another amount or currency: the booking is not paid by it, and
    # what Stripe took waits for an operator (a refund). Final, and not open.
    MISMATCHED = "mismatched"


# The intent may still take money: the customer may (re)try a card. A booking has one at most.
OPEN = frozenset({PaymentStatus.PENDING, PaymentStatus.PROCESSING, PaymentStatus.FAILED})
# Money was taken (and maybe partly or wholly given back).
PAID = frozenset({PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED,
                  PaymentStatus.REFUNDED})
REFUNDABLE = frozenset({PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED})

# What Stripe may report that our records refuse to apply (payment_anomalies.kind).
AMOUNT_MISMATCH, REFUND_EXCEEDS_PAYMENT = "amount_mismatch", "refund_exceeds_payment"
ANOMALY_KINDS = (AMOUNT_MISMATCH, REFUND_EXCEEDS_PAYMENT)

# Stripe's refund reasons; anything else an administrator writes is kept as a note.
REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")
# Refund statuses that count as money given back (Stripe counts pending ones in amount_refunded),
# and those that also hold their amount while we wait for Stripe's answer.
REFUNDED = frozenset({"pending", "requires_action", "succeeded"})
RESERVED = REFUNDED | {"requested"}


def status_of_intent(intent_status: str, *, has_error: bool) -> PaymentStatus:
    """Our status for a PaymentIntent status. A declined card leaves the intent waiting for
    another payment method, with `last_payment_error` set: that is a failure to us."""
    if intent_status == "succeeded":
        return PaymentStatus.SUCCEEDED
    if intent_status == "canceled":
        return PaymentStatus.CANCELED
    if intent_status in ("processing", "requires_action", "requires_capture"):
        return PaymentStatus.PROCESSING
    if intent_status == "requires_payment_method" and has_error:
        return PaymentStatus.FAILED
    return PaymentStatus.PENDING  # requires_payment_method, requires_confirmation


def may_settle(current: PaymentStatus, observed: PaymentStatus) -> bool:
    """Whether what Stripe says of the intent may move the payment. Open payments follow their
    intent; paid ones move only by refunds (`refund_status`)."""
    if current is PaymentStatus.CANCELED:
        # Stripe is the authority on money: an intent that succeeded took it, even if our
        # records had given the attempt up (its booking was cancelled while the customer paid).
        return observed is PaymentStatus.SUCCEEDED
    if current not in OPEN:
        return False
    # An older snapshot must not undo a newer one: once Stripe is processing, only the outcome
    # (or a cancellation, or a failure sending it back) moves it.
    return not (current is PaymentStatus.PROCESSING and observed is PaymentStatus.PENDING)


def refund_status(amount: int, refunded: int) -> PaymentStatus:
    if refunded <= 0:
        return PaymentStatus.SUCCEEDED
    return PaymentStatus.REFUNDED if refunded >= amount else PaymentStatus.PARTIALLY_REFUNDED
