"""Managers read the whole delivery log, with filters, as administrators do; the raw errors of
our servers stay with administrators."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from common.testing import bearer
from notify.tests.conftest import Scene, booking_event
from notify.tests.test_api import listing


async def test_a_manager_reads_every_message_in_the_travellers_words(
        scene: Scene, manager: dict[str, Any], admin: dict[str, Any]) -> None:
    notify: TestClient = scene.notify
    eve = scene.traveller("Eve")
    await scene.sink.stop()
    waiting = await scene.publish(booking_event("booking.confirmed", eve))
    await scene.delivery(waiting, status="pending", attempts=1)

    seen = await listing(notify, manager, userId=eve["user"]["id"], channel="email")

    [item] = seen["items"]
    assert item["userId"] == eve["user"]["id"]
    assert item["lastError"] == "Not delivered yet: another attempt will follow"
    one = await notify.get(f"/api/notifications/{item['id']}", headers=bearer(manager))
    assert one.status == 200
    [raw] = (await listing(notify, admin, userId=eve["user"]["id"], channel="email"))["items"]
    assert "unreachable" in str(raw["lastError"])
    await scene.sink.start()
    await scene.delivery(waiting, status="sent")
