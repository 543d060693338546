"""The visitor's address and scheme: the peer's, or what a trusted proxy in front (the gateway)
reports, so that the API's limits and logs see the visitor rather than this service."""

from __future__ import annotations

import functools
import ipaddress

from aiohttp import web

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
TRUSTED: web.AppKey[tuple[Network, ...]] = web.AppKey("trusted_proxies", tuple)


@functools.lru_cache(maxsize=1024)
def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _from_trusted(request: web.Request) -> bool:
    peer = _address(request.remote or "")
    return peer is not None and any(peer in net for net in request.app[TRUSTED])


def visitor_address(request: web.Request) -> str:
    """The nearest address in `X-Forwarded-For` when the peer is a trusted proxy (the one it
    appended), else the peer's."""
    if _from_trusted(request):
        chain = [a for v in request.headers.getall("X-Forwarded-For", []) for a in v.split(",")]
        if chain and (address := _address(chain[-1])) is not None:
            return str(address)
    return str(_address(request.remote or "") or request.remote or "unknown")


def visitor_proto(request: web.Request) -> str:
    if _from_trusted(request):
        said = [p.strip().lower() for v in request.headers.getall("X-Forwarded-Proto", [])
                for p in v.split(",")]
        if said and said[-1] in ("http", "https"):
            return said[-1]
    return request.scheme


def visitor_host(request: web.Request) -> str:
    """The host the visitor asked for (the gateway's, when it is in front)."""
    if _from_trusted(request):
        said = request.headers.get("X-Forwarded-Host", "").split(",")[-1].strip()
        if said:
            return said
    return request.host
