"""The frames realtime sends: JSON text, camelCase, timestamps ISO-8601 UTC with `Z`. Each is
encoded here once, down to the bytes on the wire, which every recipient shares."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

from common.bus import Event
from common.bus.envelope import utc_timestamp

CONNECTED_MESSAGE = "Connected to tourbook realtime: live seat availability"


_TEXT = 0x81  # FIN, opcode 1
PROTOCOL_PING = b"\x89\x00"  # FIN, opcode 9, no payload: a protocol-level ping
_PONG = 0x8A  # FIN, opcode 10


@dataclass(frozen=True, slots=True)
class Frame:
    """One message: its type (the metrics label), its JSON payload, and the whole WebSocket
    frame, unmasked and uncompressed as a server sends it, ready to write to any client."""

    kind: str
    payload: bytes
    wire: bytes


def encode(frame: dict[str, Any]) -> Frame:
    payload = json.dumps(frame, separators=(",", ":"), ensure_ascii=False).encode()
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", _TEXT, size)
    elif size < 1 << 16:
        header = struct.pack("!BBH", _TEXT, 126, size)
    else:
        header = struct.pack("!BBQ", _TEXT, 127, size)
    return Frame(str(frame["type"]), payload, header + payload)


def protocol_pong(payload: bytes) -> bytes:
    """The answer to a client's protocol ping, its payload echoed (125 bytes at most: the reader
    refuses larger control frames)."""
    return bytes((_PONG, len(payload))) + payload


def connection(client_id: str, *, authenticated: bool) -> Frame:
    return encode({"type": "connection", "clientId": client_id, "message": CONNECTED_MESSAGE,
                   "authenticated": authenticated, "timestamp": utc_timestamp()})


def ping() -> Frame:
    return encode({"type": "ping", "timestamp": utc_timestamp()})


def pong() -> Frame:
    return encode({"type": "pong", "timestamp": utc_timestamp()})


def subscribed(tour_ids: set[str]) -> Frame:
    return encode({"type": "subscribed", "tourIds": sorted(tour_ids),
                   "timestamp": utc_timestamp()})


def authenticated(user_id: str) -> Frame:
    return encode({"type": "authenticated", "userId": user_id, "timestamp": utc_timestamp()})


def error(code: str, message: str, details: Any = None) -> Frame:
    frame: dict[str, Any] = {"type": "error", "error": code, "message": message}
    if details is not None:
        frame["details"] = details
    frame["timestamp"] = utc_timestamp()
    return encode(frame)


def event(event: Event, data: dict[str, Any]) -> Frame:
    """An event as browsers see it: the original's shape, plus the event id to de-duplicate on."""
    return encode({"type": event.event_type, "eventId": event.event_id, "data": data,
                   "timestamp": event.timestamp})
