"""Each event a traveller or an operator must hear about arrives as an e-mail at a real SMTP
server: to the right recipient, with the right subject, and the facts in both the plain text and
the HTML part."""

from __future__ import annotations

import html
import re
import uuid
from datetime import UTC, datetime

from common.testing import eventually
from notify.formatting import moment
from notify.tests.conftest import (
    PUBLIC_URL,
    Bookings,
    MakeScene,
    Scene,
    booking_event,
    low_event,
    payment_event,
    updated_event,
)
from standins.smtp import Received


def both_parts(mail: Received, *facts: str) -> None:
    """Each fact is in the plain text, and in the HTML as a reader sees it (markup aside) or
    as a link's target."""
    assert mail.text is not None and mail.html is not None
    seen = html.unescape(re.sub(r"<[^>]+>", "", mail.html))
    for fact in facts:
        assert fact in mail.text, f"{fact!r} not in the text part:\n{mail.text}"
        assert fact in seen or f'href="{html.escape(fact)}"' in mail.html, \
            f"{fact!r} not in the HTML part:\n{mail.html}"


async def test_a_confirmed_booking_is_e_mailed_to_its_contact(scene: Scene) -> None:
    nina = scene.traveller("Nina")
    event = await scene.publish(booking_event("booking.confirmed", nina))

    [mail] = await scene.mail_to(nina["user"]["email"])

    assert mail.subject == "Your booking is confirmed: Calanques by kayak on Sunday 14 March 2027"
    assert mail.sender == "noreply@tourbook.example"
    assert mail.message["From"] == "tourbook <noreply@tourbook.example>"
    assert mail.message.get_content_type() == "multipart/alternative"
    booking_id = event.data["bookingId"]
    both_parts(mail, "Hello Nina Traveller", "Calanques by kayak", "Sunday 14 March 2027",
               "89.99 EUR", booking_id, f"{PUBLIC_URL}/bookings/{booking_id}")
    row = await scene.delivery(event, status="sent")
    assert (row["recipient"], row["template"], row["subject"]) == (
        nina["user"]["email"], "booking_confirmed", mail.subject)
    assert (row["attempts"], row["event_type"]) == (1, "booking.confirmed")
    assert (str(row["user_id"]), str(row["booking_id"])) == (nina["user"]["id"], booking_id)
    assert row["sent_at"] is not None and row["provider_id"] == mail.message["Message-ID"]


async def test_a_changed_booking_is_e_mailed_with_what_changed_and_what_is_to_pay(
        scene: Scene) -> None:
    tara = scene.traveller("Tara")
    event = await scene.publish(updated_event(
        tara, {"participants": 2, "total_amount": 9000},
        {"participants": 3, "total_amount": 13500, "special_requests": "A vegetarian lunch"}))

    [mail] = await scene.mail_to(tara["user"]["email"])

    assert mail.subject == "Your booking has changed: Calanques by kayak on Sunday 14 March 2027"
    booking_id = event.data["bookingId"]
    both_parts(mail, "Hello Tara Traveller", "Calanques by kayak", "3 (was 2)",
               "135.00 EUR (was 90.00 EUR)", "A vegetarian lunch", "Nothing has been charged",
               booking_id, f"{PUBLIC_URL}/bookings/{booking_id}")
    assert "Contact" not in (mail.text or "")
    row = await scene.delivery(event, status="sent")
    assert (row["template"], row["event_type"], row["recipient"]) == (
        "booking_updated", "booking.updated", tara["user"]["email"])
    # A change is told by e-mail only.
    assert set(await scene.deliveries(event)) == {"email"}


async def test_a_changed_contact_hears_of_the_booking_at_its_new_address(scene: Scene) -> None:
    uma = scene.traveller("Uma")
    new_address = f"uma-{uuid.uuid4().hex[:8]}@example.com"

    await scene.publish(updated_event(
        uma, {}, {"contact_name": "Uma Guide", "contact_email": new_address,
                  "contact_phone": "+33698765432"}))

    [mail] = await scene.mail_to(new_address)
    both_parts(mail, "Hello Uma Guide", f"Uma Guide <{new_address}>, +33698765432",
               "90.00 EUR")
    assert "(was" not in (mail.text or "")
    assert scene.sink.to(uma["user"]["email"]) == []


async def test_html_escapes_what_travellers_typed_and_amounts_follow_their_currency(
        scene: Scene) -> None:
    omar = scene.traveller("Omar")
    await scene.publish(booking_event(
        "booking.confirmed", omar, tour_title="Kyoto <b>temples</b> & gardens",
        total_amount=1234500, currency="JPY", contact_name="Omar <script>"))

    [mail] = await scene.mail_to(omar["user"]["email"])

    assert mail.subject.startswith("Your booking is confirmed: Kyoto <b>temples</b> & gardens")
    both_parts(mail, "1,234,500 JPY")
    assert mail.html is not None and mail.text is not None
    assert "Kyoto &lt;b&gt;temples&lt;/b&gt; &amp; gardens" in mail.html
    assert "Hello Omar &lt;script&gt;" in mail.html and "<script>" not in mail.html
    assert "Kyoto <b>temples</b> & gardens" in mail.text


async def test_a_booking_cancelled_unpaid_says_nothing_was_charged(scene: Scene) -> None:
    pia = scene.traveller("Pia")
    await scene.publish(booking_event(
        "booking.cancelled", pia, payment_status="unpaid", cancellation_reason="expired",
        cancelled_at=datetime(2027, 2, 1, 9, 30, tzinfo=UTC)))

    [mail] = await scene.mail_to(pia["user"]["email"])

    assert mail.subject == "Your booking is cancelled: Calanques by kayak on Sunday 14 March 2027"
    both_parts(mail, "no payment arrived while the seats were held",
               "Nothing was charged for this booking", "1 February 2027, 09:30 UTC")
    assert "refund" not in (mail.text or "").lower()


async def test_a_paid_booking_cancelled_announces_its_refund_which_is_e_mailed_once_issued(
        make_scene: MakeScene, bookings: Bookings) -> None:
    scene = await make_scene(BOOKING_URL=bookings.url)
    quinn = scene.traveller("Quinn")
    booking = await bookings.pending(quinn)
    await bookings.cancel(quinn, booking)
    cancelled = booking_event("booking.cancelled", quinn, id=uuid.UUID(booking["id"]),
                              payment_status="paid", cancellation_reason="Change of plans")
    refunded = payment_event("payment.refunded", booking)
    await scene.publish(cancelled)
    await scene.publish(refunded)

    first, second = await scene.mail_to(quinn["user"]["email"], count=2)

    assert first.subject.startswith("Your booking is cancelled:")
    both_parts(first, "reason: Change of plans", "will be refunded according to our "
               "cancellation policy", "separate e-mail with the amount")
    assert second.subject == f"Refund issued for {booking['tourTitle']}: 90.00 EUR"
    both_parts(second, "Your payment of 90.00 EUR has been refunded in full", booking["id"])
    # Each is sent once: one cancellation e-mail, one refund e-mail, nothing more.
    await eventually(lambda: scene.consumed("payment.refunded") == 1)
    assert len(scene.sink.to(quinn["user"]["email"])) == 2
    row = await scene.delivery(refunded, status="sent")
    assert (row["template"], row["booking_id"]) == ("payment_refunded", uuid.UUID(booking["id"]))


async def test_a_partial_refund_says_how_much_came_back_and_what_remains_paid(
        make_scene: MakeScene, bookings: Bookings) -> None:
    scene = await make_scene(BOOKING_URL=bookings.url)
    rita = scene.traveller("Rita")
    booking = await bookings.pending(rita, price=4500, participants=2)
    await scene.publish(payment_event("payment.refunded", booking, refunded_amount=3000,
                                      status="partially_refunded"))

    [mail] = await scene.mail_to(rita["user"]["email"])

    assert mail.subject.endswith(": 30.00 EUR")
    both_parts(mail, "30.00 EUR of your payment of 90.00 EUR has been refunded",
               "60.00 EUR remains paid")


async def test_a_completed_booking_thanks_and_invites_a_review(scene: Scene) -> None:
    sven = scene.traveller("Sven")
    event = await scene.publish(booking_event("booking.completed", sven))

    [mail] = await scene.mail_to(sven["user"]["email"])

    assert mail.subject == "Thank you for travelling with us: Calanques by kayak"
    both_parts(mail, "Thank you for joining", "review",
               f"{PUBLIC_URL}/tours/{event.data['tourId']}#reviews")


async def test_a_payment_received_is_e_mailed_to_the_contact_of_its_booking(
        make_scene: MakeScene, bookings: Bookings) -> None:
    scene = await make_scene(BOOKING_URL=bookings.url)
    tara = scene.traveller("Tara")
    contact = f"tara-trip-{uuid.uuid4().hex[:8]}@example.com"
    booking = await bookings.pending(tara, price=4500, participants=2, contact={
        "name": "Tara T.", "email": contact})
    event = await scene.publish(payment_event("payment.succeeded", booking))

    [mail] = await scene.mail_to(contact)

    assert mail.subject == f"Payment received: 90.00 EUR for {booking['tourTitle']}"
    both_parts(mail, "Hello Tara T.", "We received your payment of 90.00 EUR",
               booking["tourTitle"], booking["id"], "confirmation follows")
    assert scene.sink.to(tara["user"]["email"]) == []
    row = await scene.delivery(event, status="sent")
    assert (row["recipient"], str(row["user_id"])) == (contact, tara["user"]["id"])


async def test_a_failed_payment_links_back_to_pay_and_says_until_when_seats_are_held(
        make_scene: MakeScene, bookings: Bookings) -> None:
    scene = await make_scene(BOOKING_URL=bookings.url)
    uma = scene.traveller("Uma")
    booking = await bookings.pending(uma)
    await scene.publish(payment_event("payment.failed", booking,
                                      failure_message="Your card has insufficient funds."))

    [mail] = await scene.mail_to(uma["user"]["email"])

    assert mail.subject.startswith(f"Your payment did not go through: {booking['tourTitle']}")
    held_until = moment(datetime.fromisoformat(booking["expiresAt"].replace("Z", "+00:00")))
    both_parts(mail, "Your card has insufficient funds.", f"held for you until {held_until}",
               f"{PUBLIC_URL}/bookings/{booking['id']}", "90.00 EUR")
    assert "Pay for your booking" in (mail.html or "")


async def test_a_failed_payment_of_a_booking_no_longer_pending_sends_nothing(
        make_scene: MakeScene, bookings: Bookings) -> None:
    scene = await make_scene(BOOKING_URL=bookings.url)
    vera = scene.traveller("Vera")
    booking = await bookings.pending(vera)
    await bookings.cancel(vera, booking)
    event = await scene.publish(payment_event("payment.failed", booking))

    row = await scene.delivery(event, status="skipped")

    assert row["last_error"] == "the booking is cancelled: nothing is left to pay"
    await eventually(lambda: scene.consumed("payment.failed") == 1)
    assert scene.sink.to(vera["user"]["email"]) == []


async def test_low_availability_alerts_the_operators_address(scene: Scene) -> None:
    title = f"Etna at dawn {uuid.uuid4().hex[:6]}"
    event = await scene.publish(low_event(title=title, capacity=10, held=1, booked=7))

    [mail] = await eventually(lambda: [m for m in scene.sink.to("ops@tourbook.example")
                                       if title in m.subject], message="the operators' alert")

    assert mail.subject == f"Low availability: {title} on Sunday 14 March 2027 (2 of 10 " \
                           "seats left)"
    both_parts(mail, title, event.data["tourId"], "2 of 10", "80% taken",
               f"{PUBLIC_URL}/tours/{event.data['tourId']}")
    row = await scene.delivery(event, status="sent")
    assert (row["user_id"], row["booking_id"], row["template"]) == (
        None, None, "availability_low")
