"""Logging as an operator reads it: JSON lines (pretty on a terminal), one line per request with
its request id and user, stdlib loggers in the same shape, no secrets, the same events in Logstash.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid

import aiohttp
import pytest
import structlog

from common.logging import LOGSTASH_INDEX, bind
from common.testing import eventually
from common.tests.support import (
    CapturedLogs,
    Keys,
    LineListener,
    ServiceProcess,
    demo_env,
    find,
)

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def test_log_lines_are_json_objects_on_a_non_tty_stream():
    with CapturedLogs("demo", fmt="auto") as logs:
        structlog.get_logger("demo.worker").info("tour_published", tourId="t-1", seats=12)
    [line] = logs.events()
    assert line["event"] == "tour_published" and line["tourId"] == "t-1" and line["seats"] == 12
    assert (line["service"], line["level"], line["logger"]) == ("demo", "info", "demo.worker")
    assert ISO_UTC.match(line["timestamp"])


def test_a_terminal_gets_pretty_lines_instead_of_json():
    with CapturedLogs("demo", fmt="auto", tty=True) as logs:
        structlog.get_logger().info("tour_published", tourId="t-1")
    assert "tour_published" in logs.text and "tourId" in logs.text
    with pytest.raises(json.JSONDecodeError):
        json.loads(logs.text.splitlines()[0])


def test_lines_below_the_level_are_dropped():
    with CapturedLogs("demo", level="WARNING") as logs:
        structlog.get_logger().info("chatter")
        logging.getLogger("asyncpg").info("chatter too")
        structlog.get_logger().warning("worth_reading")
    assert [e["event"] for e in logs.events()] == ["worth_reading"]


def test_stdlib_loggers_go_through_the_same_json_chain():
    with CapturedLogs("demo") as logs:
        bind(correlationId="corr-7")
        try:
            logging.getLogger("asyncpg.pool").warning("connection %s lost", "c1",
                                                      extra={"attempt": 2})
        finally:
            structlog.contextvars.clear_contextvars()
    [line] = logs.events()
    assert line["event"] == "connection c1 lost" and line["attempt"] == 2
    assert (line["service"], line["level"], line["logger"]) == ("demo", "warning", "asyncpg.pool")
    assert line["correlationId"] == "corr-7" and ISO_UTC.match(line["timestamp"])


def test_exceptions_are_rendered_as_a_field():
    with CapturedLogs("demo") as logs:
        for logger in (structlog.get_logger("demo"), logging.getLogger("aiohttp.server")):
            try:
                {}["missing"]
            except KeyError:
                logger.exception("lookup_failed")
    lines = logs.events()
    assert [line["event"] for line in lines] == ["lookup_failed", "lookup_failed"]
    for line in lines:
        assert line["level"] == "error"
        assert line["exception"].startswith("Traceback (most recent call last)")
        assert "KeyError: 'missing'" in line["exception"]


def test_values_under_secret_names_are_redacted_at_any_depth():
    with CapturedLogs("demo") as logs:
        structlog.get_logger().info("login_attempt", email="a@example.com", password="hunter2",
                                    headers={"Authorization": "Bearer abc.def", "Accept": "*/*"},
                                    refreshToken="r-123")
    [line] = logs.events()
    assert line["email"] == "a@example.com" and line["headers"]["Accept"] == "*/*"
    assert line["password"] == line["refreshToken"] == line["headers"]["Authorization"] \
        == "[redacted]"
    assert "hunter2" not in logs.text and "abc.def" not in logs.text


async def test_one_line_per_request_with_the_incoming_request_id_and_the_user(client, keys):
    with CapturedLogs("demo") as logs:
        resp = await client.get("/api/me", headers={
            "X-Request-ID": "req-42", "Authorization": f"Bearer {keys.token('user-9')}"})
        assert resp.status == 200
    requests = find(logs.events(), "request")
    assert len(requests) == 1
    line = requests[0]
    assert (line["method"], line["path"], line["route"], line["status"]) == (
        "GET", "/api/me", "/api/me", 200)
    assert (line["requestId"], line["correlationId"], line["userId"]) == ("req-42", "req-42",
                                                                          "user-9")
    assert line["service"] == "demo" and line["level"] == "info" and line["durationMs"] >= 0
    # The handler's own lines carry the same context.
    [answered] = find(logs.events(), "whoami_answered")
    assert (answered["requestId"], answered["userId"]) == ("req-42", "user-9")


async def test_request_context_does_not_leak_into_the_next_request(client, keys):
    with CapturedLogs("demo") as logs:
        await client.get("/api/me", headers={"Authorization": f"Bearer {keys.token('user-9')}"})
        await client.get("/api/widgets/w1")
    first, second = find(logs.events(), "request")
    assert first["userId"] == "user-9" and "userId" not in second
    assert first["requestId"] != second["requestId"]


async def test_request_lines_hold_no_secrets(client, keys):
    token = keys.token("user-9")
    with CapturedLogs("demo") as logs:
        await client.post("/api/widgets?apiKey=qs-secret-1", json={
            "name": "Anvil", "unitPrice": 1, "password": "body-secret-2"},
            headers={"Authorization": f"Bearer {token}", "Cookie": "session=cookie-secret-3",
                     "X-Internal-Token": "svc-secret-4"})
        await client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert len(find(logs.events(), "request")) == 2
    for leaked in (token, "qs-secret-1", "body-secret-2", "cookie-secret-3", "svc-secret-4"):
        assert leaked not in logs.text


async def test_an_unexpected_error_is_logged_with_its_stack_and_request_id(client):
    with CapturedLogs("demo") as logs:
        resp = await client.get("/api/boom", headers={"X-Request-ID": "req-boom"})
    assert resp.status == 500
    [failure] = find(logs.events(), "unhandled_exception")
    assert failure["requestId"] == "req-boom" and failure["route"] == "/api/boom"
    assert "RuntimeError" in failure["exception"]
    [request] = find(logs.events(), "request")
    assert (request["status"], request["level"]) == (500, "error")


async def test_logstash_receives_the_same_structured_events_as_json():
    async with LineListener() as logstash:
        with CapturedLogs("demo", logstash_host="127.0.0.1", logstash_port=logstash.port) as logs:
            bind(requestId="req-ls")
            try:
                structlog.get_logger("demo").info("seat_held", seats=2, password="hunter2")
                logging.getLogger("asyncpg").warning("pool %s", "exhausted")
                try:
                    1 / 0  # noqa: B018 - raises on purpose
                except ZeroDivisionError:
                    structlog.get_logger("demo").exception("division_failed")
            finally:
                structlog.contextvars.clear_contextvars()
            # Closing the handler is what logging.shutdown() does at exit: it flushes the queue.
            await asyncio.to_thread(logs.close_handlers)
        await eventually(lambda: len(logstash.lines) >= 3, message="3 events in Logstash")
    # The shipper does not keep order; Kibana sorts by @timestamp.
    shipped = sorted(logstash.events(), key=lambda e: e["@timestamp"])
    printed = {e["event"]: e for e in logs.events()}
    assert [e["event"] for e in shipped] == ["seat_held", "pool exhausted", "division_failed"]
    for event in shipped:
        assert {k: v for k, v in event.items() if not k.startswith(("@", "message"))} \
            == printed[event["event"]]
        assert event["@timestamp"] == event["timestamp"] and event["@version"] == "1"
        assert event["@metadata"] == {"index": LOGSTASH_INDEX}
        assert event["message"] == event["event"]
        assert (event["service"], event["requestId"]) == ("demo", "req-ls")
    assert shipped[0]["password"] == "[redacted]" and shipped[0]["level"] == "info"
    assert "ZeroDivisionError" in shipped[2]["exception"]


async def test_a_service_ships_its_request_lines_to_logstash_and_flushes_on_shutdown(tmp_path):
    keys = Keys.create(tmp_path)
    request_id = f"req-{uuid.uuid4().hex[:8]}"
    async with LineListener() as logstash:
        env = demo_env(keys, LOGSTASH_HOST="127.0.0.1", LOGSTASH_PORT=str(logstash.port))
        async with ServiceProcess("common.tests.demo_service", env) as service:
            async with aiohttp.ClientSession() as http:
                resp = await http.post(f"{service.url}/api/widgets", json={
                    "name": "Anvil", "unitPrice": 100}, headers={"X-Request-ID": request_id})
                assert resp.status == 201
            service.send_signal()
            assert await service.exit_code() == 0
        # The process is gone: what it logged last was flushed by its exit, not by a timer.
        shipped = await eventually(lambda: find(logstash.events(), "service_stopped"),
                                   message="service_stopped in Logstash")
        [request] = find(logstash.events(), "request", requestId=request_id)
    assert shipped[0]["service"] == "demo"
    assert (request["service"], request["route"], request["status"]) == ("demo", "/api/widgets",
                                                                       201)
    assert request["level"] == "info" and ISO_UTC.match(request["@timestamp"])
    assert request["@metadata"] == {"index": LOGSTASH_INDEX}
    [created] = find(logstash.events(), "widget_created")
    assert created["requestId"] == request_id
    # Stdout carried the very same request line.
    [printed] = find(service.events(), "request", requestId=request_id)
    assert printed == {k: v for k, v in request.items() if not k.startswith(("@", "message"))}
