"""Webhook endpoints: the `/v1/webhook_endpoints` API, and the endpoints the configuration names.

The signing secret is shown once, in the answer to the create call, as in Stripe. Unlike Stripe,
any http(s) URL is taken, localhost included: that is what a stand-in is for.
"""

from __future__ import annotations

import re
from typing import Any

from yarl import URL

from standins.stripe.errors import InvalidRequest, missing, no_such
from standins.stripe.ids import new_id, random_part
from standins.stripe.listing import filtered_page
from standins.stripe.params import Form, merge_metadata
from standins.stripe.state import now

Obj = dict[str, Any]
_EVENT_TYPE = re.compile(r"^[a-z_]+(\.[a-z_]+)+$")


class Endpoints:
    def __init__(self) -> None:
        self.endpoints: dict[str, Obj] = {}
        self._secrets: dict[str, str] = {}

    def add(self, url: str, enabled_events: list[str], *, secret: str | None = None,
            description: str | None = None, metadata: dict[str, str] | None = None,
            api_version: str | None = None) -> Obj:
        """The new endpoint, with its `secret` (a new `whsec_...` unless given)."""
        endpoint: Obj = {
            "id": new_id("we"), "object": "webhook_endpoint", "api_version": api_version,
            "application": None, "created": now(), "description": description,
            "enabled_events": enabled_events, "livemode": False, "metadata": metadata or {},
            "status": "enabled", "url": url,
        }
        self.endpoints[endpoint["id"]] = endpoint
        self._secrets[endpoint["id"]] = secret or f"whsec_{random_part(32)}"
        return {**endpoint, "secret": self._secrets[endpoint["id"]]}

    def secret(self, endpoint_id: str) -> str:
        return self._secrets[endpoint_id]

    def wanting(self, event_type: str) -> list[Obj]:
        return [endpoint for endpoint in self.endpoints.values()
                if endpoint["status"] == "enabled"
                and ("*" in endpoint["enabled_events"] or event_type in endpoint["enabled_events"])]

    def get(self, endpoint_id: str) -> Obj:
        endpoint = self.endpoints.get(endpoint_id)
        if endpoint is None:
            raise no_such("webhook_endpoint", endpoint_id)
        return endpoint


def create(endpoints: Endpoints, form: Form) -> Obj:
    url = _url(form.string("url", required=True) or "")
    events = _enabled_events(form, required=True) or []
    description = form.string("description")
    api_version = form.string("api_version")
    metadata = merge_metadata({}, form.metadata())
    form.finish()
    return endpoints.add(url, events, description=description, metadata=metadata,
                         api_version=api_version)


def retrieve(endpoints: Endpoints, endpoint_id: str, form: Form) -> Obj:
    form.finish()
    return endpoints.get(endpoint_id)


def update(endpoints: Endpoints, endpoint_id: str, form: Form) -> Obj:
    endpoint = endpoints.get(endpoint_id)
    changes: Obj = {}
    if form.has("url"):
        changes["url"] = _url(form.string("url", required=True) or "")
    if form.has("enabled_events"):
        changes["enabled_events"] = _enabled_events(form, required=True)
    if form.has("description"):
        changes["description"] = form.string("description")
    disabled = form.boolean("disabled")
    if disabled is not None:
        changes["status"] = "disabled" if disabled else "enabled"
    if form.has("metadata"):
        changes["metadata"] = merge_metadata(endpoint["metadata"], form.metadata(),
                                             cleared=form.raw()["metadata"] == "")
    form.finish()
    endpoint.update(changes)
    return endpoint


def delete(endpoints: Endpoints, endpoint_id: str, form: Form) -> Obj:
    form.finish()
    endpoints.get(endpoint_id)
    del endpoints.endpoints[endpoint_id]
    return {"id": endpoint_id, "object": "webhook_endpoint", "deleted": True}


def listing(endpoints: Endpoints, form: Form, url: str) -> Obj:
    return filtered_page(endpoints.endpoints, form, url, "webhook_endpoint")


def _url(value: str) -> str:
    try:
        parsed = URL(value)
    except ValueError:
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise InvalidRequest(f"Invalid URL: {value}. An endpoint URL must be an http(s) URL.",
                             code="url_invalid", param="url")
    return value


def _enabled_events(form: Form, *, required: bool) -> list[str] | None:
    events = form.strings("enabled_events")
    if events is None or (required and not events):
        raise missing("enabled_events")
    for index, event_type in enumerate(events):
        if event_type != "*" and not _EVENT_TYPE.match(event_type):
            raise InvalidRequest(f"Invalid enabled_events[{index}]: must be an event type "
                                 "(payment_intent.succeeded) or '*'",
                                 param=f"enabled_events[{index}]")
    return events
