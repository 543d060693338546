"""notify's wire models: the delivery log as the API shows it, and its list's filters."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import asyncpg
from pydantic import Field, StringConstraints

from common.http import Schema

Channel = Literal["email", "sms"]
Status = Literal["pending", "sent", "failed", "skipped"]


class ListQuery(Schema):
    page: int = Field(1, ge=1, le=100_000)
    limit: int = Field(20, ge=1, le=100)
    user_id: uuid.UUID | None = Field(None, description="Administrators: one traveller's")
    booking_id: uuid.UUID | None = None
    event_type: Annotated[str, StringConstraints(
        pattern=r"^[a-z]+(\.[a-z_]+)+$", max_length=100)] | None = Field(
        None, description="e.g. booking.confirmed")
    channel: Channel | None = None
    status: Status | None = None
    recipient: Annotated[str, StringConstraints(min_length=1, max_length=254)] | None = Field(
        None, description="The exact address or number, any case")


class NotificationOut(Schema):
    id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    channel: Channel
    recipient: str | None = Field(description="null for an SMS skipped for want of a number")
    template: str
    subject: str | None = Field(description="E-mail only")
    status: Status
    attempts: int = Field(description="Tries to hand the message over (0 when skipped)")
    last_error: str | None = Field(description=(
        "Why the message was skipped, or what went wrong with it. Administrators read the "
        "server's own words (kept after a later success); a traveller reads what it means for "
        "them, never our servers' details"))
    sent_at: datetime | None
    created_at: datetime
    updated_at: datetime
    booking_id: uuid.UUID | None
    user_id: uuid.UUID | None = Field(description="null for operators' alerts")


class NotificationListOut(Schema):
    items: list[NotificationOut]
    page: int
    limit: int
    total: int


def notification_out(row: asyncpg.Record, *, for_admin: bool) -> NotificationOut:
    return NotificationOut(
        id=row["id"], event_id=row["event_id"], event_type=row["event_type"],
        channel=row["channel"], recipient=row["recipient"] or None, template=row["template"],
        subject=row["subject"], status=row["status"], attempts=row["attempts"],
        last_error=row["last_error"] if for_admin else _as_a_traveller_reads_it(row),
        sent_at=row["sent_at"], created_at=row["created_at"],
        updated_at=row["updated_at"], booking_id=row["booking_id"], user_id=row["user_id"])


def _as_a_traveller_reads_it(row: asyncpg.Record) -> str | None:
    """A failure as its traveller may read it: the reasons for a skip are ours and safe; a
    server's refusal or our own outage is said in plain words, without hosts or replies."""
    status, error = row["status"], row["last_error"]
    if status == "skipped" or error is None:
        return error if status == "skipped" else None
    if status == "sent":
        return None
    if row["permanent"]:
        receiver = "mail server" if row["channel"] == "email" else "phone network"
        return f"The recipient's {receiver} refused this message; check the address or number"
    if status == "failed":
        return "This message could not be delivered after several attempts"
    return "Not delivered yet: another attempt will follow"
