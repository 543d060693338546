"""SMS go through the provider's HTTP API to travellers who opted in and have a phone; others
get a skipped row saying why. A retry after the e-mail went out sends only the SMS."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from common.testing import eventually
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


async def test_a_number_the_provider_refuses_is_failed_for_good(
        sms_scene: Scene, sms_provider: SmsProvider) -> None:
    max_ = await traveller(sms_scene, "Max")
    sms_provider.answers.append((400, {"code": 21211, "status": 400,
                                       "message": "The 'To' number is not a valid phone number"}))
    event = await sms_scene.publish(booking_event("booking.confirmed", max_))

    row = await sms_scene.delivery(event, "sms", status="failed")

    assert (row["attempts"], row["permanent"]) == (1, True)
    assert "400: The 'To' number is not a valid phone number" in row["last_error"]
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
