"""The state machine alone: which moves exist, what they stamp and which event each emits."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from booking.errors import InvalidTransition
from booking.states import (
    PaymentStatus,
    State,
    Status,
    allowed_transitions,
    cancel_by_customer,
    change_payment,
    change_status,
    customer_transitions,
    refund_status,
)

PENDING_UNPAID = State(Status.PENDING, PaymentStatus.UNPAID)
TODAY = date(2027, 3, 14)
# A departure whose date has passed: every move of the machine is open.
PAST = {"tour_date": TODAY - timedelta(days=1), "today": TODAY}


@pytest.mark.parametrize(("start", "to", "event"), [
    (Status.PENDING, Status.CONFIRMED, "booking.confirmed"),
    (Status.PENDING, Status.CANCELLED, "booking.cancelled"),
    (Status.CONFIRMED, Status.COMPLETED, "booking.completed"),
    (Status.CONFIRMED, Status.CANCELLED, "booking.cancelled"),
])
def test_every_status_move_emits_its_event_and_stamps_its_time(start: Status, to: Status,
                                                               event: str) -> None:
    transition = change_status(State(start, PaymentStatus.UNPAID), to, reason="why", **PAST)
    assert transition.after == State(to, PaymentStatus.UNPAID)
    assert transition.event_type == event
    assert transition.stamp is to
    assert transition.reason == ("why" if to is Status.CANCELLED else None)


@pytest.mark.parametrize(("start", "to"), [
    (Status.PENDING, Status.COMPLETED), (Status.PENDING, Status.PENDING),
    (Status.CONFIRMED, Status.PENDING), (Status.COMPLETED, Status.CANCELLED),
    (Status.CANCELLED, Status.CONFIRMED), (Status.CANCELLED, Status.CANCELLED),
])
def test_an_illegal_status_move_is_refused_with_the_allowed_ones(start: Status,
                                                                 to: Status) -> None:
    with pytest.raises(InvalidTransition) as refused:
        change_status(State(start, PaymentStatus.UNPAID), to, **PAST)
    assert refused.value.status == 409
    assert refused.value.details["current"] == start
    assert refused.value.details["requested"] == to
    assert refused.value.details["allowed"] == list(
        allowed_transitions(State(start, PaymentStatus.UNPAID), **PAST)["status"])


def test_money_received_on_a_pending_booking_confirms_it() -> None:
    transition = change_payment(PENDING_UNPAID, PaymentStatus.PAID)
    assert transition.after == State(Status.CONFIRMED, PaymentStatus.PAID)
    assert transition.event_type == "booking.confirmed"


def test_money_received_on_a_cancelled_booking_is_recorded_and_it_stays_cancelled() -> None:
    transition = change_payment(State(Status.CANCELLED, PaymentStatus.UNPAID),
                                PaymentStatus.PAID)
    assert transition.after == State(Status.CANCELLED, PaymentStatus.PAID)
    assert transition.event_type is None


def test_a_failed_payment_leaves_the_booking_pending_and_may_be_retried() -> None:
    failed = change_payment(PENDING_UNPAID, PaymentStatus.FAILED)
    assert failed.after == State(Status.PENDING, PaymentStatus.FAILED)
    assert failed.event_type is None
    retried = change_payment(failed.after, PaymentStatus.PAID)
    assert retried.after == State(Status.CONFIRMED, PaymentStatus.PAID)


@pytest.mark.parametrize(("start", "to"), [
    (PaymentStatus.PAID, PaymentStatus.PAID), (PaymentStatus.PAID, PaymentStatus.FAILED),
    (PaymentStatus.UNPAID, PaymentStatus.REFUNDED), (PaymentStatus.REFUNDED, PaymentStatus.PAID),
    (PaymentStatus.FAILED, PaymentStatus.FAILED),
])
def test_an_illegal_payment_move_is_refused(start: PaymentStatus, to: PaymentStatus) -> None:
    with pytest.raises(InvalidTransition) as refused:
        change_payment(State(Status.CONFIRMED, start), to)
    assert refused.value.details["field"] == "paymentStatus"


def test_allowed_transitions_list_both_fields() -> None:
    assert allowed_transitions(PENDING_UNPAID, **PAST) == {
        "status": ["confirmed", "cancelled"],
        "paymentStatus": ["processing", "paid", "failed"]}
    assert allowed_transitions(State(Status.COMPLETED, PaymentStatus.REFUNDED), **PAST) == {
        "status": [], "paymentStatus": []}


@pytest.mark.parametrize("days_ahead", [0, 1, 30])
def test_a_booking_completes_only_once_its_departure_date_has_passed(days_ahead: int) -> None:
    confirmed = State(Status.CONFIRMED, PaymentStatus.PAID)
    dates = {"tour_date": TODAY + timedelta(days=days_ahead), "today": TODAY}
    assert allowed_transitions(confirmed, **dates)["status"] == ["cancelled"]
    with pytest.raises(InvalidTransition) as refused:
        change_status(confirmed, Status.COMPLETED, **dates)
    assert refused.value.details == {"field": "status", "current": "confirmed",
                                     "requested": "completed", "allowed": ["cancelled"]}
    assert "has not passed yet" in refused.value.message
    assert change_status(confirmed, Status.COMPLETED, **PAST).after.status is Status.COMPLETED


def test_a_refund_is_partial_until_the_whole_total_came_back() -> None:
    assert refund_status(1000, 3000) is PaymentStatus.PARTIALLY_REFUNDED
    assert refund_status(3000, 3000) is PaymentStatus.REFUNDED



@pytest.mark.parametrize(("status", "moves"), [
    (Status.PENDING, ["cancelled"]), (Status.CONFIRMED, ["cancelled"]),
    (Status.COMPLETED, []), (Status.CANCELLED, [])])
def test_a_traveller_may_only_cancel_before_the_departure_day(status: Status,
                                                              moves: list[str]) -> None:
    state = State(status, PaymentStatus.PAID)
    tomorrow = TODAY + timedelta(days=1)
    assert customer_transitions(state, tour_date=tomorrow, today=TODAY) == {
        "status": moves, "paymentStatus": []}
    assert customer_transitions(state, tour_date=TODAY, today=TODAY) == {
        "status": [], "paymentStatus": []}


def test_a_traveller_cancelling_on_the_departure_day_is_told_why() -> None:
    state = State(Status.CONFIRMED, PaymentStatus.PAID)
    cancelled = cancel_by_customer(state, tour_date=TODAY + timedelta(days=1), today=TODAY,
                                   reason="ill")
    assert cancelled.after == State(Status.CANCELLED, PaymentStatus.PAID)

    with pytest.raises(InvalidTransition) as refused:
        cancel_by_customer(state, tour_date=TODAY, today=TODAY, reason="ill")
    assert refused.value.details == {"field": "status", "current": "confirmed",
                                     "requested": "cancelled", "allowed": []}
    assert "the departure date (2027-03-14) has come" in refused.value.message
