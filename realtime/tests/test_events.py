"""Events from the bus reach the right clients: `tour.availability.low` everyone,
`tour.availability.changed` the tour's followers, a booking's changes its own user; events that
cannot be delivered land in the dead-letter queue; the queue comes back after a lost broker."""

from __future__ import annotations

import json
import uuid

from common.bus.testing import TcpProxy
from common.testing import eventually
from realtime.tests.conftest import Bus, Connect, MakeServer, metric


async def test_availability_low_reaches_every_client_in_the_original_shape(
        server, connect: Connect, bus: Bus) -> None:
    clients = [await connect(server) for _ in range(3)]

    event = await bus.low(availableSeats=2)

    for client in clients:
        frame = await client.next()
        assert frame == {"type": "tour.availability.low", "eventId": event.event_id,
                         "data": event.data, "timestamp": event.timestamp}
    assert await metric(server, "realtime_events_received_total",
                        type="tour.availability.low") == 1
    assert await metric(server, "realtime_messages_sent_total",
                        type="tour.availability.low") == 3


async def test_availability_changes_reach_only_the_followers_of_the_tour(
        server, connect: Connect, bus: Bus) -> None:
    followed, other = str(uuid.uuid4()), str(uuid.uuid4())
    follower, bystander = await connect(server), await connect(server)

    answer = await follower.ask({"type": "subscribe", "tourIds": [followed.upper()]})
    assert answer["type"] == "subscribed" and answer["tourIds"] == [followed]

    await bus.changed(other, seats=9)
    event = await bus.changed(followed, seats=4)
    marker = await bus.low()  # everyone gets this: what came before it is all there is

    frame = await follower.next()
    assert frame["type"] == "tour.availability.changed"
    assert frame["eventId"] == event.event_id
    assert frame["data"] == {"tourId": followed, "tourDate": "2027-03-14", "availableSeats": 4,
                             "capacity": 10}
    assert (await follower.next())["eventId"] == marker.event_id
    assert (await bystander.next())["eventId"] == marker.event_id


async def test_after_unsubscribing_a_client_gets_no_more_changes_of_that_tour(
        server, connect: Connect, bus: Bus) -> None:
    one, two = str(uuid.uuid4()), str(uuid.uuid4())
    client = await connect(server)
    assert (await client.ask({"type": "subscribe", "tourIds": [one, two]}))["tourIds"] == sorted(
        [one, two])

    answer = await client.ask({"type": "unsubscribe", "tourIds": [one, str(uuid.uuid4())]})
    assert answer == {"type": "subscribed", "tourIds": [two], "timestamp": answer["timestamp"]}

    await bus.changed(one)
    kept = await bus.changed(two)
    assert (await client.next())["eventId"] == kept.event_id


async def test_a_client_may_follow_a_limited_number_of_tours(
        make_server: MakeServer, connect: Connect) -> None:
    server = await make_server(REALTIME_MAX_SUBSCRIPTIONS="3")
    client = await connect(server)
    tours = [str(uuid.uuid4()) for _ in range(4)]
    await client.ask({"type": "subscribe", "tourIds": tours[:2]})

    error = await client.ask({"type": "subscribe", "tourIds": tours[2:]})

    assert error["type"] == "error" and error["error"] == "TOO_MANY_SUBSCRIPTIONS"
    assert error["details"] == {"max": 3, "current": 2}
    # Nothing of the refused request was applied; within the limit it still works.
    assert (await client.ask({"type": "subscribe", "tourIds": tours[2:3]}))["tourIds"] == sorted(
        tours[:3])


async def test_a_disconnected_follower_leaves_nothing_behind(
        server, connect: Connect, bus: Bus) -> None:
    tour = str(uuid.uuid4())
    leaving, staying = await connect(server), await connect(server)
    for client in (leaving, staying):
        await client.ask({"type": "subscribe", "tourIds": [tour]})
    await leaving.ws.close()

    async def one_left() -> bool:
        return (await (await server.get("/health")).json())["connections"] == 1

    await eventually(one_left, message="the leaving client gone")
    event = await bus.changed(tour)
    assert (await staying.next())["eventId"] == event.event_id
    await eventually(lambda: _sent(server, 1), message="one changed frame sent, not two")


async def _sent(server, count: int) -> bool:
    return await metric(server, "realtime_messages_sent_total",
                        type="tour.availability.changed") == count


async def test_a_malformed_event_goes_to_the_dead_letter_queue(server, bus: Bus) -> None:
    marker = uuid.uuid4().hex
    await bus.reader.publish_raw(f'{{"not": "an event", "marker": "{marker}"}}'.encode(),
                                 exchange="tour_booking_events",
                                 routing_key="tour.availability.low")

    letter = await bus.dead_letter(lambda body: marker.encode() in body)

    assert letter.header.properties.headers["x-dead-letter-reason"] == "malformed"


async def test_a_change_without_a_tour_id_goes_to_the_dead_letter_queue(
        server, connect: Connect, bus: Bus) -> None:
    client = await connect(server)
    event = await bus.publish("tour.availability.changed", {"availableSeats": 3})

    letter = await bus.dead_letter(lambda body: event.event_id.encode() in body)

    assert letter.header.properties.headers["x-dead-letter-reason"] == "malformed"
    assert json.loads(letter.body)["eventId"] == event.event_id
    # The consumer goes on.
    low = await bus.low()
    assert (await client.next())["eventId"] == low.event_id


async def test_after_the_broker_connection_is_lost_the_queue_is_declared_again(
        make_server: MakeServer, connect: Connect, bus: Bus, amqp_url: str) -> None:
    proxy = TcpProxy("127.0.0.1", 5672)
    await proxy.start()
    try:
        server = await make_server(AMQP_URL=proxy.url_for(amqp_url))
        client = await connect(server)
        first = await bus.low()
        assert (await client.next())["eventId"] == first.event_id

        await proxy.stop()  # the connection dies, and its exclusive queue with it
        await proxy.start()

        async def consuming_again() -> bool:
            # Connected a second time (which declares the queue again), and subscribed again.
            if await metric(server, "bus_connects_total") < 2:
                return False
            body = await (await server.get("/health")).json()
            return body["checks"]["consumer:realtime"]["status"] == "ok"

        await eventually(consuming_again, timeout=30, message="the consumer back")
        again = await bus.low()
        assert (await client.next())["eventId"] == again.event_id
    finally:
        await proxy.stop()


async def test_a_tour_named_more_than_once_counts_once_against_the_limit(
        make_server: MakeServer, connect: Connect) -> None:
    # A page listing departures may name a tour once per departure.
    server = await make_server(REALTIME_MAX_SUBSCRIPTIONS="2")
    client = await connect(server)
    tour = str(uuid.uuid4())

    answer = await client.ask({"type": "subscribe", "tourIds": [tour, tour.upper(), tour, tour]})

    assert answer["type"] == "subscribed" and answer["tourIds"] == [tour], answer
    too_many = [str(uuid.uuid4()) for _ in range(3)]
    error = await client.ask({"type": "subscribe", "tourIds": too_many})
    assert error["error"] == "TOO_MANY_SUBSCRIPTIONS"
    assert error["details"] == {"max": 2, "current": 1}
