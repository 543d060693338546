"""GET /api/notifications and /api/notifications/{id}: travellers read the log of messages sent
about them, never anyone else's; administrators read everyone's, with filters."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from common.bus import Event
from common.testing import bearer, eventually
from notify.tests.conftest import Scene, booking_event, low_event


async def listing(client: TestClient, who: dict[str, Any] | None,
                  **query: Any) -> dict[str, Any]:
    resp = await client.get("/api/notifications", params=query,
                            headers=bearer(who) if who else {})
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


@pytest.fixture
def notify(scene: Scene) -> TestClient:
    return scene.notify


@pytest.fixture
async def logged(scene: Scene) -> dict[str, Any]:
    """Two travellers' messages and an operators' alert, all in the log."""
    ann, ben = scene.traveller("Ann"), scene.traveller("Ben")
    confirmed = booking_event("booking.confirmed", ann)
    completed = booking_event("booking.completed", ann, id=confirmed.data["bookingId"])
    theirs = booking_event("booking.confirmed", ben)
    alert = low_event()
    events: list[Event] = [confirmed, completed, theirs, alert]
    for event in events:
        await scene.publish(event)
    for event in events:
        await scene.delivery(event, status="sent")
    await eventually(lambda: scene.consumed("booking.confirmed") == 2
                     and scene.consumed("booking.completed") == 1, message="all handled")
    return {"ann": ann, "ben": ben, "confirmed": confirmed, "completed": completed,
            "theirs": theirs, "alert": alert}


async def test_a_traveller_sees_the_messages_about_them_newest_first(
        notify: TestClient, logged: dict[str, Any]) -> None:
    body = await listing(notify, logged["ann"])

    assert (body["page"], body["limit"], body["total"]) == (1, 20, 3)
    assert [(i["eventType"], i["channel"]) for i in body["items"]] == [
        ("booking.completed", "email"), ("booking.confirmed", "sms"),
        ("booking.confirmed", "email")]
    item = body["items"][2]
    assert item["eventId"] == logged["confirmed"].event_id
    assert item["recipient"] == logged["ann"]["user"]["email"]
    assert (item["template"], item["status"], item["attempts"]) == (
        "booking_confirmed", "sent", 1)
    assert item["subject"].startswith("Your booking is confirmed")
    assert item["userId"] == logged["ann"]["user"]["id"]
    assert item["bookingId"] == logged["confirmed"].data["bookingId"]
    assert item["sentAt"] and item["createdAt"] and item["updatedAt"]
    assert item["lastError"] is None
    sms = body["items"][1]
    assert (sms["status"], sms["recipient"], sms["subject"]) == (
        "skipped", None, None)  # Ann has no phone: nothing to send an SMS to
    assert sms["lastError"] == "the traveller has not opted in to SMS"


async def test_someone_else_s_messages_do_not_exist_for_a_traveller(
        notify: TestClient, logged: dict[str, Any]) -> None:
    ann, ben = logged["ann"], logged["ben"]
    theirs = (await listing(notify, ben))["items"][0]

    assert (await listing(notify, ann, userId=ben["user"]["id"]))["total"] == 0
    assert (await listing(notify, ann, bookingId=logged["theirs"].data["bookingId"]))[
        "total"] == 0
    resp = await notify.get(f"/api/notifications/{theirs['id']}", headers=bearer(ann))
    assert resp.status == 404
    assert (await resp.json())["error"] == "NOTIFICATION_NOT_FOUND"
    mine = await notify.get(f"/api/notifications/{theirs['id']}", headers=bearer(ben))
    assert mine.status == 200
    assert await mine.json() == theirs


async def test_an_admin_sees_every_message_with_filters(
        notify: TestClient, logged: dict[str, Any], admin: dict[str, Any]) -> None:
    ann = logged["ann"]
    booking_id = logged["confirmed"].data["bookingId"]

    of_ann = await listing(notify, admin, userId=ann["user"]["id"])
    of_booking = await listing(notify, admin, bookingId=booking_id, channel="email")
    completed = await listing(notify, admin, userId=ann["user"]["id"],
                              eventType="booking.completed")
    skipped = await listing(notify, admin, userId=ann["user"]["id"], status="skipped")
    to_ann = await listing(notify, admin, recipient=ann["user"]["email"].upper())
    alerts = await listing(notify, admin, eventType="tour.availability.low", limit=100)

    assert of_ann["total"] == 3
    assert [i["template"] for i in of_booking["items"]] == ["booking_completed",
                                                           "booking_confirmed"]
    assert [i["eventId"] for i in completed["items"]] == [logged["completed"].event_id]
    assert [i["channel"] for i in skipped["items"]] == ["sms"]
    assert to_ann["total"] == 2
    alert = [i for i in alerts["items"] if i["eventId"] == logged["alert"].event_id]
    assert [(i["recipient"], i["userId"]) for i in alert] == [("ops@tourbook.example", None)]
    one = await notify.get(f"/api/notifications/{alert[0]['id']}", headers=bearer(admin))
    assert one.status == 200


async def test_pages_of_the_log(notify: TestClient, logged: dict[str, Any]) -> None:
    ann = logged["ann"]
    everything = (await listing(notify, ann))["items"]

    pages = [await listing(notify, ann, page=page, limit=2) for page in (1, 2, 3)]

    assert [p["total"] for p in pages] == [3, 3, 3]
    assert [i["id"] for p in pages for i in p["items"]] == [i["id"] for i in everything]
    assert pages[2]["items"] == []


async def test_the_log_needs_an_access_token(notify: TestClient) -> None:
    resp = await notify.get("/api/notifications")

    assert resp.status == 401
    assert (await resp.json())["error"] == "AUTH_TOKEN_MISSING"


@pytest.mark.parametrize(("query", "field"), [
    ({"limit": "101"}, "limit"), ({"page": "0"}, "page"), ({"channel": "fax"}, "channel"),
    ({"status": "lost"}, "status"), ({"userId": "ann"}, "userId"),
    ({"eventType": "DROP TABLE"}, "eventType"), ({"colour": "blue"}, "colour")])
async def test_a_bad_filter_is_a_validation_error(notify: TestClient, customer: dict[str, Any],
                                                  query: dict[str, str], field: str) -> None:
    resp = await notify.get("/api/notifications", params=query, headers=bearer(customer))

    assert resp.status == 400
    body = await resp.json()
    assert (body["status"], body["error"]) == (400, "VALIDATION_ERROR")
    assert [d["field"] for d in body["details"]] == [field]


async def test_an_unknown_notification_is_404(notify: TestClient,
                                              customer: dict[str, Any]) -> None:
    for notification_id in ("0b9e6d2e-8f7a-4c1e-9a51-4cf0f7a3e2b1", "not-a-uuid"):
        resp = await notify.get(f"/api/notifications/{notification_id}",
                                headers=bearer(customer))
        assert resp.status == 404
        assert (await resp.json())["error"] == "NOTIFICATION_NOT_FOUND"


async def test_a_traveller_reads_failures_in_plain_words_and_an_admin_the_servers_own(
        scene: Scene, notify: TestClient, admin: dict[str, Any]) -> None:
    cleo, dora = scene.traveller("Cleo"), scene.traveller("Dora")

    async def last_error(who: dict[str, Any], of: dict[str, Any], status: str) -> str | None:
        body = await listing(notify, who, userId=of["user"]["id"], channel="email",
                             status=status)
        [item] = body["items"]
        return item["lastError"]

    # Our mail server is down: the admin sees where it failed; the traveller, what it means.
    await scene.sink.stop()
    waiting = await scene.publish(booking_event("booking.confirmed", cleo))
    await scene.delivery(waiting, status="pending", attempts=1)
    assert "unreachable" in str(await last_error(admin, cleo, "pending"))
    assert await last_error(cleo, cleo, "pending") == (
        "Not delivered yet: another attempt will follow")
    await scene.sink.start()
    await scene.delivery(waiting, status="sent")
    assert await last_error(cleo, cleo, "sent") is None

    # The recipient's server refuses the address: said without the server's reply.
    scene.sink.set_rules(refuse=[dora["user"]["email"]])
    refused = await scene.publish(booking_event("booking.confirmed", dora))
    await scene.delivery(refused, status="failed")
    refusal = str(await last_error(dora, dora, "failed"))
    assert refusal.startswith("The recipient's mail server refused this message")
    assert "550" not in refusal and "smtp" not in refusal.lower()
    assert str(await last_error(admin, dora, "failed")).startswith("recipient refused: 550")
