"""notify's HTTP handlers: parse, read the delivery log, shape the response."""

from __future__ import annotations

import uuid

from aiohttp import web

from common.auth import Identity
from common.http import endpoint, json_response
from notify.app_keys import RECORDS
from notify.records import NotificationNotFound
from notify.schemas import ListQuery, NotificationListOut, NotificationOut

TAGS = ("notifications",)


@endpoint(summary="The messages sent about the caller (admins: everyone's, with filters)",
          access="user", query=ListQuery, response=NotificationListOut, tags=TAGS,
          description=(
              "Newest first. Every e-mail and SMS notify was asked to send, with its status: "
              "pending (not sent yet, or to be retried), sent, failed, skipped (opted out, no "
              "phone number...; the reason in lastError). A customer's filters narrow their "
              "own messages; an administrator sees all, operators' alerts included."))
async def list_notifications(request: web.Request, identity: Identity,
                             query: ListQuery) -> web.Response:
    found = await request.app[RECORDS].search(identity, query)
    return json_response(NotificationListOut(items=found.items, page=query.page,
                                             limit=query.limit, total=found.total))


@endpoint(summary="One message of the log", access="user", response=NotificationOut,
          errors=(404,), tags=TAGS, description=(
              "The caller's own, or anyone's for an administrator; otherwise 404 "
              "NOTIFICATION_NOT_FOUND, as an unknown one."))
async def get_notification(request: web.Request, identity: Identity) -> web.Response:
    try:
        notification_id = uuid.UUID(request.match_info["id"])
    except ValueError:
        raise NotificationNotFound() from None
    return json_response(await request.app[RECORDS].get(identity, notification_id))
