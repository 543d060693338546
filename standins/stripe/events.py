"""Events: each change the account makes is recorded as an Event (`evt_...`) with a snapshot of
the object, and handed to the webhook deliveries, which say how many endpoints wait for it."""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from standins.stripe.errors import InvalidRequest
from standins.stripe.ids import new_id
from standins.stripe.listing import page
from standins.stripe.params import Form

Obj = dict[str, Any]
Deliver = Callable[[Obj], int]
"""Sends an event to the endpoints that want it; how many that is (its `pending_webhooks`)."""


@dataclass(frozen=True)
class Origin:
    """The API request behind a change, as events report it (`request.id`, `idempotency_key`)."""

    request_id: str | None = None
    idempotency_key: str | None = None


class EventLog:
    def __init__(self, api_version: str, deliver: Deliver | None = None) -> None:
        self.api_version = api_version
        self.events: dict[str, Obj] = {}
        self.deliver: Deliver = deliver or (lambda event: 0)

    def emit(self, event_type: str, obj: Obj, origin: Origin, *,
             previous: Obj | None = None) -> Obj:
        """Record `event_type` for `obj` as it is now; `previous` holds the attributes the
        change replaced (`data.previous_attributes`)."""
        data: Obj = {"object": copy.deepcopy(obj)}
        if previous:
            data["previous_attributes"] = previous
        event: Obj = {
            "id": new_id("evt"), "object": "event", "api_version": self.api_version,
            "created": int(time.time()), "data": data, "livemode": False, "pending_webhooks": 0,
            "request": {"id": origin.request_id, "idempotency_key": origin.idempotency_key},
            "type": event_type,
        }
        self.events[event["id"]] = event
        event["pending_webhooks"] = self.deliver(event)
        return event


def type_filter(pattern: str) -> Callable[[str], bool]:
    """`payment_intent.*` or an exact type, as `GET /v1/events?type=` takes it."""
    regex = re.compile("^" + ".*".join(map(re.escape, pattern.split("*"))) + "$")
    return lambda event_type: regex.match(event_type) is not None


def listing(log: EventLog, form: Form, url: str) -> Obj:
    """`GET /v1/events`, newest first, filtered by `type` (wildcards allowed) or `types[]`."""
    pattern, types = form.string("type"), form.strings("types")
    if pattern is not None and types is not None:
        raise InvalidRequest("You may only specify one of these parameters: type, types.")
    wanted = type_filter(pattern) if pattern else (lambda t: types is None or t in types)
    events = [event for event in reversed(log.events.values()) if wanted(event["type"])]
    result = page(events, form, url, "event")
    form.finish()
    return result
