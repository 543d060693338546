"""SMS go through the provider's HTTP API to travellers who opted in and have a phone; others
get a skipped row saying why. A retry after the e-mail went out sends only the SMS."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from common.testing import eventually
from notify.consumers import QUEUE
from notify.tests.conftest import (
    PUBLIC_URL,
    SMS_FROM,
    SMS_SID,
    SMS_TOKEN,
    MakeScene,
    Scene,
    SmsProvider,
    booking_event,
    http_sms_env,
)

PHONE = "+33698765432"


@pytest.fixture
async def sms_scene(make_scene: MakeScene, sms_provider: SmsProvider) -> Scene:
    """notify sending SMS through the provider's HTTP API."""
    return await make_scene(**http_sms_env(sms_provider))


async def traveller(scene: Scene, name: str, *, phone: str | None = PHONE,
                    sms: bool = True) -> dict[str, Any]:
    who = scene.traveller(name, phone=phone)
    if sms:
        await scene.set_profile(who, notificationPreferences={"sms": True})
    return who


async def test_an_opted_in_traveller_gets_the_sms_through_the_provider_api(
        sms_scene: Scene, sms_provider: SmsProvider) -> None:
    gil = await traveller(sms_scene, "Gil")
    event = await sms_scene.publish(booking_event("booking.confirmed", gil))

    row = await sms_scene.delivery(event, "sms", status="sent")

    [request] = sms_provider.to(PHONE)
    assert request["path"] == f"/2010-04-01/Accounts/{SMS_SID}/Messages.json"
    assert request["authorization"] == "Basic " + base64.b64encode(
        f"{SMS_SID}:{SMS_TOKEN}".encode()).decode()
    assert request["form"]["From"] == SMS_FROM
    body = request["form"]["Body"]
    assert "Calanques by kayak" in body and "Sunday 14 March 2027" in body
    assert "confirmed" in body and f"{PUBLIC_URL}/bookings/{event.data['bookingId']}" in body
    assert len(body) <= 320
    assert (row["recipient"], row["template"], row["attempts"]) == (
        PHONE, "sms_booking_confirmed", 1)
    assert row["provider_id"].startswith("SM")
    await sms_scene.mail_to(gil["user"]["email"])


async def test_a_traveller_who_did_not_opt_in_gets_no_sms(
        sms_scene: Scene, sms_provider: SmsProvider) -> None:
    hal = await traveller(sms_scene, "Hal", sms=False)
    event = await sms_scene.publish(booking_event("booking.confirmed", hal))

    row = await sms_scene.delivery(event, "sms", status="skipped")

    assert (row["recipient"], row["attempts"]) == (PHONE, 0)
    assert row["last_error"] == "the traveller has not opted in to SMS"
    await sms_scene.mail_to(hal["user"]["email"])
    assert sms_provider.requests == []


async def test_without_a_number_on_the_booking_the_account_s_number_gets_the_sms(
        sms_scene: Scene, sms_provider: SmsProvider) -> None:
    jo = await traveller(sms_scene, "Jo", phone="+4915112345678")
    event = await sms_scene.publish(booking_event("booking.confirmed", jo, contact_phone=None))

    row = await sms_scene.delivery(event, "sms", status="sent")

    assert row["recipient"] == "+4915112345678"
    assert len(sms_provider.to("+4915112345678")) == 1


async def test_an_e_mail_opt_out_is_respected(
        sms_scene: Scene, sms_provider: SmsProvider) -> None:
    kim = await traveller(sms_scene, "Kim")
    await sms_scene.set_profile(kim, notificationPreferences={"email": False})
    event = await sms_scene.publish(booking_event("booking.cancelled", kim))

    email = await sms_scene.delivery(event, "email", status="skipped")
    await sms_scene.delivery(event, "sms", status="sent")

    assert email["last_error"] == "the traveller turned e-mail notifications off"
    assert sms_scene.sink.to(kim["user"]["email"]) == []
    [request] = sms_provider.to(PHONE)
    assert "is cancelled" in request["form"]["Body"]


async def test_a_provider_outage_retries_only_the_sms_the_e_mail_is_not_sent_twice(
        sms_scene: Scene, sms_provider: SmsProvider) -> None:
    lea = await traveller(sms_scene, "Lea")
    sms_provider.answers.append((503, {"message": "Service unavailable", "status": 503}))
    event = await sms_scene.publish(booking_event("booking.confirmed", lea))

    sms = await sms_scene.delivery(event, "sms", status="sent")

    assert sms["attempts"] == 2
    assert sms["last_error"] == "SMS provider answered 503: Service unavailable"
    assert len(sms_provider.to(PHONE)) == 2
    email = await sms_scene.delivery(event, "email", status="sent")
    assert email["attempts"] == 1
    assert len(sms_scene.sink.to(lea["user"]["email"])) == 1


@pytest.mark.parametrize("retry_after", ["3", "{http_date}"])
async def test_a_provider_asking_to_slow_down_is_not_asked_again_sooner_than_it_says(
        sms_scene: Scene, sms_provider: SmsProvider, retry_after: str) -> None:
    tia = await traveller(sms_scene, "Tia")
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=4), usegmt=True)
    sms_provider.answers.append((429, {"message": "Too Many Requests", "status": 429},
                                 {"Retry-After": retry_after.format(http_date=when)}))
    event = await sms_scene.publish(booking_event("booking.confirmed", tia))

    row = await sms_scene.delivery(event, "sms", status="sent")

    first, second = sms_provider.to(PHONE)
    assert second["at"] - first["at"] >= 3  # the next retry queue's 5 s, not the usual 1 s
    assert row["attempts"] == 2
    assert row["last_error"] == "SMS provider answered 429: Too Many Requests"


async def test_a_retry_after_beyond_the_longest_retry_waits_that_long_and_no_longer(
        sms_scene: Scene, sms_provider: SmsProvider) -> None:
    una = await traveller(sms_scene, "Una")
    sms_provider.answers.append((429, {"message": "Too Many Requests"}, {"Retry-After": "86400"}))
    longest = max(QUEUE.retry_queues, key=QUEUE.retry_queues.__getitem__)
    try:
        event = await sms_scene.publish(booking_event("booking.confirmed", una))

        await sms_scene.reader.wait_depth(longest, 1, within=20)
        row = await sms_scene.delivery(event, "sms", status="pending", attempts=1)
        assert row["last_error"] == "SMS provider answered 429: Too Many Requests"
    finally:
        await sms_scene.reader.channel.queue_purge(longest, timeout=10)


async def test_a_provider_that_knows_no_such_account_is_our_configuration_and_retried(
        sms_scene: Scene, sms_provider: SmsProvider) -> None:
    """Twilio answers 404 to a wrong account id in the URL, and says nothing about the number:
    every SMS would fail the same way until the settings are fixed, so none is given up."""
    vic = await traveller(sms_scene, "Vic")
    sms_provider.answers.append((404, {
        "code": 20404, "status": 404, "more_info": "https://www.twilio.com/docs/errors/20404",
        "message": f"The requested resource /2010-04-01/Accounts/{SMS_SID}/Messages.json "
                   "was not found"}))
    event = await sms_scene.publish(booking_event("booking.confirmed", vic))

    row = await sms_scene.delivery(event, "sms", status="sent")

    assert (row["attempts"], row["permanent"]) == (2, False)
    assert row["last_error"].startswith("SMS provider answered 404: The requested resource")


async def test_a_number_the_provider_refuses_is_failed_for_good(
        sms_scene: Scene, sms_provider: SmsProvider) -> None:
    max_ = await traveller(sms_scene, "Max")
    sms_provider.answers.append((400, {
        "code": 21211, "status": 400,
        "message": f"The 'To' number {PHONE} is not a valid phone number."}))
    event = await sms_scene.publish(booking_event("booking.confirmed", max_))

    row = await sms_scene.delivery(event, "sms", status="failed")

    assert (row["attempts"], row["permanent"]) == (1, True)
    # Twilio quotes the number; like the logs, the error shows it masked.
    assert "400: The 'To' number +33***32 is not a valid phone number." in row["last_error"]
    await eventually(lambda: sms_scene.consumed("booking.confirmed") == 1)
    assert len(sms_provider.requests) == 1
    await sms_scene.mail_to(max_["user"]["email"])


async def test_the_log_provider_of_development_records_the_sms_as_sent(scene: Scene) -> None:
    ned = await traveller(scene, "Ned")
    event = await scene.publish(booking_event("booking.confirmed", ned))

    row = await scene.delivery(event, "sms", status="sent")

    assert row["provider_id"].startswith("log-")


async def test_with_sms_off_every_sms_is_skipped(make_scene: MakeScene) -> None:
    scene = await make_scene(NOTIFY_SMS_PROVIDER="off")
    olga = await traveller(scene, "Olga")
    event = await scene.publish(booking_event("booking.confirmed", olga))

    row = await scene.delivery(event, "sms", status="skipped")

    assert row["last_error"].startswith("SMS is turned off")


async def test_an_sms_the_provider_took_is_sent_once_whatever_its_answer_s_body(
        sms_scene: Scene, sms_provider: SmsProvider) -> None:
    """A 2xx is the provider's word that it took the text: an answer that is not JSON, nor
    even text, must not make notify send it again."""
    pia = await traveller(sms_scene, "Pia")
    sms_provider.answers.append((201, b"\xff\xfe queued \x81"))
    event = await sms_scene.publish(booking_event("booking.confirmed", pia))

    row = await sms_scene.delivery(event, "sms", status="sent")

    assert (row["attempts"], row["provider_id"]) == (1, None)
    await eventually(lambda: sms_scene.consumed("booking.confirmed") == 1)
    assert len(sms_provider.to(PHONE)) == 1


async def test_a_refusal_that_is_not_json_is_still_a_refusal(
        sms_scene: Scene, sms_provider: SmsProvider) -> None:
    quin = await traveller(sms_scene, "Quin")
    sms_provider.answers.append((400, b"<html>\n<body>Bad \xe9 Request</body>\n</html>"))
    event = await sms_scene.publish(booking_event("booking.confirmed", quin))

    row = await sms_scene.delivery(event, "sms", status="failed")

    assert (row["attempts"], row["permanent"]) == (1, True)
    assert row["last_error"].startswith("SMS provider answered 400: <html> <body>Bad")


async def test_a_number_changed_before_the_retry_gets_no_second_sms(
        make_scene: MakeScene, sms_provider: SmsProvider) -> None:
    """The SMS went out, the e-mail is to be retried, and the traveller changes their number
    meanwhile: the retry sends the e-mail, not the same SMS again to the new number."""
    old, new = "+4915112345678", "+4915187654321"
    first = await make_scene(**http_sms_env(sms_provider))
    ray = await traveller(first, "Ray", phone=old)
    first.sink.set_rules(defer=[ray["user"]["email"]])
    event = await first.publish(booking_event("booking.confirmed", ray, contact_phone=None))
    await first.delivery(event, "sms", status="sent", recipient=old)
    await first.delivery(event, "email", status="pending", attempts=1)
    await first.notify.close()  # the retry waits in the queue while the number changes
    await first.set_profile(ray, phone=new)
    first.sink.set_rules()

    scene = await make_scene(**http_sms_env(sms_provider))

    await scene.delivery(event, "email", status="sent")
    await eventually(lambda: scene.consumed("booking.confirmed") == 1)
    assert [r["form"]["To"] for r in sms_provider.requests] == [old]
    [sms] = await scene.db.fetch(
        "SELECT recipient, status FROM deliveries WHERE event_id = $1 AND channel = 'sms'",
        uuid.UUID(event.event_id))
    assert (sms["recipient"], sms["status"]) == (old, "sent")
