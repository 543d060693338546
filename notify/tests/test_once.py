"""Effects once: an event delivered twice (published again, or redelivered after its Redis
claim was lost) sends its e-mail once."""

from __future__ import annotations

import redis.asyncio as aioredis

from common.testing import eventually
from notify.tests.conftest import Scene, booking_event


async def test_the_same_event_published_twice_sends_one_e_mail(scene: Scene) -> None:
    wendy = scene.traveller("Wendy")
    event = booking_event("booking.confirmed", wendy)
    await scene.publish(event)
    await scene.mail_to(wendy["user"]["email"])

    await scene.publish(event)

    await eventually(lambda: scene.consumed("booking.confirmed", "duplicate") == 1,
                     message="the copy acked as a duplicate")
    assert len(scene.sink.to(wendy["user"]["email"])) == 1
    row = await scene.delivery(event, status="sent")
    assert row["attempts"] == 1


async def test_two_copies_arriving_together_send_one_e_mail(scene: Scene) -> None:
    xavier = scene.traveller("Xavier")
    event = booking_event("booking.confirmed", xavier)

    await scene.publish(event)
    await scene.publish(event)

    await eventually(lambda: scene.consumed("booking.confirmed", "handled") == 1
                     and scene.consumed("booking.confirmed", "duplicate") == 1,
                     message="one copy handled, the other a duplicate")
    assert len(scene.sink.to(xavier["user"]["email"])) == 1


async def test_a_redelivery_that_finds_no_claim_in_redis_still_sends_nothing_twice(
        scene: Scene, redis: aioredis.Redis, redis_prefix: str) -> None:
    """The claim is gone (Redis lost its data, or the 24 h passed): the delivery log still
    knows the e-mail was sent."""
    yves = scene.traveller("Yves")
    event = booking_event("booking.confirmed", yves)
    await scene.publish(event)
    await scene.mail_to(yves["user"]["email"])
    claim = f"{redis_prefix}notification_queue:processed:{event.event_id}"

    async def claim_done() -> bool:
        # A lease while the handler runs; `done` once it has returned, just after the mail.
        return await redis.get(claim) == b"done"

    await eventually(claim_done, message="the claim marked done")
    assert 0 < await redis.ttl(claim) <= 24 * 3600
    await redis.delete(claim)

    await scene.publish(event)

    await eventually(lambda: scene.consumed("booking.confirmed", "handled") == 2,
                     message="the redelivery handled")
    assert len(scene.sink.to(yves["user"]["email"])) == 1
    row = await scene.delivery(event, status="sent")
    assert row["attempts"] == 1
