"""When sending fails: a server that is down or says "later" gets the e-mail once it is back,
nothing lost; a recipient refused for good is recorded as failed and never tried again; an event
that can never make a message goes to the dead-letter queue at once, nothing sent; the last
retry gives up into the dead-letter queue, from which a replay delivers."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from structlog.testing import capture_logs

from common.bus import EXCHANGE, Event
from common.bus.dlq import replay, show
from common.bus.redelivery import ATTEMPTS, DEAD_LETTER_REASON
from common.bus.testing import headers
from common.testing import eventually
from notify.consumers import QUEUE
from notify.tests.conftest import MakeScene, Scene, booking_event

DLQ = QUEUE.dlq


async def test_smtp_down_then_back_delivers_the_e_mail_once(scene: Scene) -> None:
    zoe = scene.traveller("Zoe")
    await scene.sink.stop()
    event = await scene.publish(booking_event("booking.confirmed", zoe))
    down = await scene.delivery(event, status="pending", attempts=1)
    assert "SMTP server unreachable" in down["last_error"]

    await scene.sink.start()

    [mail] = await scene.mail_to(zoe["user"]["email"])
    assert mail.subject.startswith("Your booking is confirmed")
    row = await scene.delivery(event, status="sent")
    assert row["attempts"] >= 2
    await eventually(lambda: scene.consumed("booking.confirmed") == 1)
    assert len(scene.sink.to(zoe["user"]["email"])) == 1


async def test_a_deferred_recipient_is_retried_until_the_server_takes_it(scene: Scene) -> None:
    abel = scene.traveller("Abel")
    scene.sink.set_rules(defer=[abel["user"]["email"]])
    event = await scene.publish(booking_event("booking.confirmed", abel))
    busy = await scene.delivery(event, status="pending", attempts=2)
    assert busy["last_error"].startswith("recipient refused: 451")

    scene.sink.set_rules()

    await scene.mail_to(abel["user"]["email"], timeout=20)
    row = await scene.delivery(event, status="sent")
    assert row["attempts"] == 3
    assert len(scene.sink.to(abel["user"]["email"])) == 1


async def test_a_refused_recipient_is_failed_for_good_and_not_retried(scene: Scene) -> None:
    bea = scene.traveller("Bea")
    scene.sink.set_rules(refuse=[bea["user"]["email"]])
    event = await scene.publish(booking_event("booking.confirmed", bea))

    row = await scene.delivery(event, status="failed")

    assert (row["attempts"], row["permanent"]) == (1, True)
    assert row["last_error"].startswith("recipient refused: 550")
    # The event is done with: acked once, never failed, so never retried nor dead-lettered.
    await eventually(lambda: scene.consumed("booking.confirmed") == 1)
    assert scene.failed("booking.confirmed") == 0
    assert await scene.reader.depth(DLQ) == 0
    assert scene.metric("notify_deliveries_total", channel="email",
                        template="booking_confirmed", status="failed") == 1
    assert scene.sink.messages == []


@pytest.mark.parametrize("rule", ["refuse", "defer"])
async def test_an_address_the_server_echoes_in_its_refusal_is_masked_in_logs(
        scene: Scene, rule: str) -> None:
    """Servers quote the recipient in their refusals (`550 5.1.1 <cy@...>: ...`); logs and
    dead letters show recipients masked, the full address is in the delivery log only."""
    ida = scene.traveller("Ida")
    address = ida["user"]["email"]
    scene.sink.set_rules(**{rule: [address]})
    event = booking_event("booking.confirmed", ida)

    with capture_logs() as logs:
        await scene.publish(event)
        # After the attempt: the row is pending (with no error yet) from the moment it is made.
        row = await scene.delivery(event, status="failed" if rule == "refuse" else "pending",
                                   attempts=1)
        await eventually(lambda: any(e["event"] == "event_consumed" for e in logs),
                         message="the event's outcome logged")

    assert row["recipient"] == address
    assert address not in row["last_error"] and "i***@example.com" in row["last_error"]
    mine = [e for e in logs if not e["event"].startswith("smtp_sink")]
    assert [e for e in mine if e["event"] == "notification"]
    assert [e for e in mine if address in str(e)] == []


def _spoilt(spoil: str, good: Event) -> Event:
    data: dict[str, Any] = dict(good.data)
    if spoil == "no bookingId":
        del data["bookingId"]
    elif spoil == "invalid e-mail":
        data["userEmail"] = "not-an-address"
    elif spoil == "amount as text":
        data["totalAmount"] = "89.99"
    else:  # a refund that does not say how much
        return Event.new("payment.refunded", {
            "paymentId": str(uuid.uuid4()), "bookingId": data["bookingId"],
            "userId": data["userId"], "amount": 8999, "currency": "EUR", "refundedAmount": 0})
    return Event.new(good.event_type, data)


@pytest.mark.parametrize("spoil", ["no bookingId", "invalid e-mail", "amount as text",
                                   "refund without amount"])
async def test_a_malformed_event_goes_to_the_dead_letter_queue_at_once_and_sends_nothing(
        scene: Scene, spoil: str) -> None:
    event = await scene.publish(_spoilt(spoil, booking_event("booking.confirmed",
                                                             scene.traveller("Cy"))))

    message = await scene.reader.take_one(DLQ)

    assert message.header.properties.message_id == event.event_id
    found = headers(message)
    assert (found[DEAD_LETTER_REASON], found[ATTEMPTS]) == ("malformed", 0)
    assert scene.failed(event.event_type) == 1  # once: not retried
    assert await scene.deliveries(event) == {}
    assert scene.sink.messages == []


async def test_a_body_that_is_no_event_goes_to_the_dead_letter_queue(scene: Scene) -> None:
    await scene.reader.publish_raw(b"{not json", exchange=EXCHANGE,
                                   routing_key="booking.confirmed")

    message = await scene.reader.take_one(DLQ)

    assert headers(message)[DEAD_LETTER_REASON] == "malformed"


async def test_an_event_notify_has_no_message_for_is_acked_and_ignored(scene: Scene) -> None:
    event = await scene.publish(booking_event("booking.created", scene.traveller("Dan")))

    await eventually(lambda: scene.consumed("booking.created", "ignored") == 1,
                     message="booking.created ignored")
    assert await scene.deliveries(event) == {}
    assert await scene.reader.depth(DLQ) == 0
    assert scene.sink.messages == []


async def test_the_last_attempt_gives_up_into_the_dead_letter_queue_and_a_replay_delivers(
        scene: Scene) -> None:
    eve = scene.traveller("Eve")
    await scene.sink.stop()
    # As the queue hands it back after four failed attempts: this one is the last.
    event = await scene.publish(booking_event("booking.confirmed", eve),
                                headers={ATTEMPTS: QUEUE.max_attempts - 1})
    await scene.reader.wait_depth(DLQ, 1)

    [letter] = await show(scene.reader.channel, QUEUE.name, 10)
    assert (letter.event_id, letter.reason) == (event.event_id, "handler-failed")
    row = await scene.delivery(event, status="failed")
    assert row["permanent"] is False
    assert row["last_error"].startswith(
        f"gave up after {QUEUE.max_attempts} attempts: SMTP server unreachable")

    # The operator fixes the server and replays the dead letters (python -m common.bus.dlq).
    await scene.sink.start()
    assert await replay(scene.reader.channel, QUEUE.name, 10) == 1

    await scene.mail_to(eve["user"]["email"])
    row = await scene.delivery(event, status="sent")
    assert row["attempts"] == 2


async def test_auth_down_then_back_the_event_waits_and_is_delivered(
        make_scene: MakeScene) -> None:
    """Without the traveller's opt-ins nothing is sent; the event is retried, not dropped."""
    blind = await make_scene(AUTH_URL="http://127.0.0.1:1")
    fay = blind.traveller("Fay")
    event = await blind.publish(booking_event("booking.confirmed", fay))
    await eventually(lambda: blind.failed("booking.confirmed") >= 1,
                     message="the handler failing without auth")
    assert await blind.deliveries(event) == {}
    await blind.notify.close()

    scene = await make_scene()  # auth reachable again (here: a replica that can reach it)

    await scene.mail_to(fay["user"]["email"], timeout=20)
    assert len(scene.sink.to(fay["user"]["email"])) == 1


# --- addresses beyond ASCII ------------------------------------------------------------------

def _unique(local: str, domain: str = "example.com") -> str:
    return f"{local}.{uuid.uuid4().hex[:6]}@{domain}"


async def test_a_non_ascii_mailbox_is_sent_with_smtputf8_where_the_server_offers_it(
        scene: Scene) -> None:
    address = _unique("jürgen")
    event = await scene.publish(booking_event("booking.confirmed", scene.traveller("Jürgen"),
                                              contact_email=address))

    [mail] = await scene.mail_to(address)

    assert "SMTPUTF8" in mail.mail_options
    assert mail.recipients == (address,) and mail.message["To"] == address
    await scene.delivery(event, status="sent", attempts=1)


async def test_a_non_ascii_mailbox_at_a_server_without_smtputf8_fails_for_good_saying_why(
        scene: Scene) -> None:
    scene.sink.smtputf8 = False
    address = _unique("zoë")
    event = await scene.publish(booking_event("booking.confirmed", scene.traveller("Zoë"),
                                              contact_email=address))

    row = await scene.delivery(event, status="failed")

    assert (row["attempts"], row["permanent"]) == (1, True)
    assert row["last_error"] == ("the mail server does not support SMTPUTF8, which the "
                                 "recipient's mailbox name (not ASCII) needs")
    await eventually(lambda: scene.consumed("booking.confirmed") == 1)
    assert scene.failed("booking.confirmed") == 0
    assert scene.sink.messages == []


async def test_an_internationalised_domain_goes_in_its_ascii_form_without_smtputf8(
        scene: Scene) -> None:
    scene.sink.smtputf8 = False
    local = f"ann.{uuid.uuid4().hex[:6]}"
    event = await scene.publish(booking_event("booking.confirmed", scene.traveller("Ann"),
                                              contact_email=f"{local}@bücher.example"))

    [mail] = await scene.mail_to(f"{local}@xn--bcher-kva.example")

    assert "SMTPUTF8" not in mail.mail_options
    assert mail.message["To"] == f"{local}@xn--bcher-kva.example"
    row = await scene.delivery(event, status="sent", attempts=1)
    assert row["recipient"] == f"{local}@bücher.example"
