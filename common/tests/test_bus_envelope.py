"""The event envelope: its JSON form, its AMQP properties, and strict parsing."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
import structlog

from common.bus import Event, MalformedEventError


def test_a_new_event_has_the_envelope_of_the_design() -> None:
    event = Event.new("booking.confirmed", {"bookingId": "b1"}, correlation_id="req-1")

    raw = json.loads(event.to_json())

    assert list(raw) == ["eventId", "eventType", "eventVersion", "timestamp", "correlationId",
                         "data"]
    assert uuid.UUID(raw["eventId"]).version == 4
    assert raw["eventType"] == "booking.confirmed"
    assert raw["eventVersion"] == "1.0"
    assert raw["timestamp"].endswith("Z")
    assert datetime.fromisoformat(raw["timestamp"]).tzinfo == UTC
    assert raw["correlationId"] == "req-1"
    assert raw["data"] == {"bookingId": "b1"}


def test_the_correlation_id_defaults_to_the_one_bound_for_logging() -> None:
    with structlog.contextvars.bound_contextvars(correlationId="from-context"):
        assert Event.new("x.y", {}).correlation_id == "from-context"
    with structlog.contextvars.bound_contextvars(requestId="req-9"):
        assert Event.new("x.y", {}).correlation_id == "req-9"
    assert uuid.UUID(Event.new("x.y", {}).correlation_id)


def test_an_event_survives_a_round_trip_through_bytes() -> None:
    event = Event.new("payment.succeeded", {"amount": 8999, "currency": "EUR", "nested": [1]})

    assert Event.from_bytes(event.to_json()) == event


def test_amqp_properties_carry_id_type_persistence_and_correlation() -> None:
    event = Event.new("booking.cancelled", {}, correlation_id="c-1")

    props = event.properties()

    assert props.message_id == event.event_id
    assert props.message_type == "booking.cancelled"
    assert props.content_type == "application/json"
    assert props.delivery_mode == 2
    assert props.correlation_id == "c-1"
    assert props.timestamp is not None
    assert abs((props.timestamp - datetime.now(UTC)).total_seconds()) < 60


def _valid() -> dict[str, object]:
    return Event.new("tour.availability.low", {"tourId": "t"}).to_dict()


@pytest.mark.parametrize(("body", "problem"), [
    (b"{not json", "not JSON"),
    (b"\xff\xfe", "not JSON"),
    (b"[1, 2]", "not an object"),
    (json.dumps({k: v for k, v in _valid().items() if k != "eventId"}).encode(), "eventId"),
    (json.dumps({**_valid(), "eventId": "123"}).encode(), "UUID"),
    (json.dumps({**_valid(), "eventType": 5}).encode(), "eventType"),
    (json.dumps({**_valid(), "eventVersion": "one"}).encode(), "eventVersion"),
    (json.dumps({**_valid(), "timestamp": "yesterday"}).encode(), "timestamp"),
    (json.dumps({**_valid(), "timestamp": "2026-11-27T10:00:00"}).encode(), "time zone"),
    (json.dumps({**_valid(), "correlationId": None}).encode(), "correlationId"),
    (json.dumps({**_valid(), "data": [1]}).encode(), "data must be an object"),
    (json.dumps({**_valid(), "data": None}).encode(), "data must be an object"),
])
def test_anything_but_a_well_formed_envelope_is_malformed(body: bytes, problem: str) -> None:
    with pytest.raises(MalformedEventError, match=problem):
        Event.from_bytes(body)
