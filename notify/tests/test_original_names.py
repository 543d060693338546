"""notify started with the original's names for its broker, SMTP login and sender: it consumes on
the broker vhost `RABBITMQ_URL` names, logs in with `SMTP_USER`/`SMTP_PASS`, and sends from
`SMTP_FROM_NAME <SMTP_FROM_EMAIL>`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from common.bus import CONSUMERS
from common.bus.testing import QueueReader
from common.config import load_config
from common.testing import eventually
from notify.app import create_app
from notify.config import Config
from notify.tests.conftest import Scene, booking_event, empty_notification_queues
from standins.smtp import SmtpSink

LOGIN = ("mailer", "s3cret-pass")


@pytest.fixture
async def guarded_sink() -> AsyncIterator[SmtpSink]:
    """An SMTP server that takes mail only after AUTH with LOGIN."""
    sink = SmtpSink(authenticate=lambda user, password: (user, password) == LOGIN)
    await sink.start()
    yield sink
    await sink.stop()


@pytest.fixture
def original_env(notify_infra: dict[str, str], notify_amqp_url: str,
                 guarded_sink: SmtpSink) -> dict[str, str]:
    """notify's settings with the test's vhost, SMTP login and sender under the original's names
    only: notify ignoring RABBITMQ_URL would consume elsewhere, and its mail would be refused."""
    env = {name: value for name, value in notify_infra.items() if name != "AMQP_URL"}
    return env | {"RABBITMQ_URL": notify_amqp_url, "SMTP_PORT": str(guarded_sink.port),
                  "SMTP_USER": LOGIN[0], "SMTP_PASS": LOGIN[1],
                  "SMTP_FROM_EMAIL": "noreply@tourisme.example",
                  "SMTP_FROM_NAME": "Tourisme App"}


async def test_notify_reads_the_original_s_broker_smtp_and_sender_names(
        original_env: dict[str, str], guarded_sink: SmtpSink, reader: QueueReader,
        notify_db: asyncpg.Connection, auth_url: str) -> None:
    await empty_notification_queues(reader)
    client = TestClient(TestServer(create_app(load_config(Config, original_env))))
    await client.start_server()
    try:
        await eventually(lambda: all(c.is_consuming for c in client.app[CONSUMERS].values()),
                         message="notify's consumer subscribed")
        scene = Scene(client, guarded_sink, reader, notify_db, auth_url)
        ann = scene.traveller("Ann")

        event = await scene.publish(booking_event("booking.confirmed", ann))

        [mail] = await scene.mail_to(ann["user"]["email"])
        assert mail.message["From"] == "Tourisme App <noreply@tourisme.example>"
        assert mail.sender == "noreply@tourisme.example"
        await scene.delivery(event, "email", status="sent", attempts=1)
    finally:
        await client.close()
