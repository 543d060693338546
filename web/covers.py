"""Cover pictures drawn here, for tours whose pictures are not ours to show: a landscape in one
of a few palettes, chosen and shaped by the tour's slug, so that each tour keeps its own."""

from __future__ import annotations

import hashlib
import random
import re

from aiohttp import web

from web.errors import PageNotFound

# (sky top, sky bottom, sun, far hills, near hills)
PALETTES = (
    ("#1d3557", "#f4a261", "#ffd8a8", "#6d597a", "#355070"),   # dusk
    ("#0b525b", "#99e2b4", "#fdfcdc", "#2a9d8f", "#14746f"),   # lagoon
    ("#3a0ca3", "#f72585", "#ffd6e0", "#7209b7", "#480ca8"),   # city lights
    ("#bc6c25", "#fefae0", "#fff3b0", "#dda15e", "#606c38"),   # desert
    ("#023e8a", "#90e0ef", "#ffffff", "#0077b6", "#03045e"),   # ocean
    ("#386641", "#f2e8cf", "#fff8e1", "#6a994e", "#283618"),   # forest
)
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,120}$")


def _ridge(rng: random.Random, base: float, jitter: float, width: int = 800) -> str:
    points: list[tuple[float, float]] = [(0.0, base)]
    x = 0.0
    while x < width:
        x += rng.uniform(60, 140)
        points.append((min(x, width), base + rng.uniform(-jitter, jitter)))
    path = " ".join(f"L{px:.0f},{py:.0f}" for px, py in points)
    return f"M0,450 {path} L{width},450 Z"


def cover_svg(slug: str) -> str:
    seed = int.from_bytes(hashlib.sha256(slug.encode()).digest()[:8], "big")
    rng = random.Random(seed)
    top, bottom, sun, far, near = PALETTES[seed % len(PALETTES)]
    sun_x, sun_y = rng.uniform(140, 660), rng.uniform(110, 190)
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 800 450" '
        'preserveAspectRatio="xMidYMid slice">'
        f'<defs><linearGradient id="s" x1="0" y1="0" x2="0" y2="1">'
        f'<stop offset="0" stop-color="{top}"/><stop offset="1" stop-color="{bottom}"/>'
        '</linearGradient></defs>'
        '<rect width="800" height="450" fill="url(#s)"/>'
        f'<circle cx="{sun_x:.0f}" cy="{sun_y:.0f}" r="{rng.uniform(38, 62):.0f}" '
        f'fill="{sun}" opacity="0.9"/>'
        f'<path d="{_ridge(rng, 285, 55)}" fill="{far}" opacity="0.85"/>'
        f'<path d="{_ridge(rng, 345, 35)}" fill="{near}"/>'
        f'<path d="{_ridge(rng, 405, 15)}" fill="{near}" opacity="0.6"/>'
        '</svg>')


async def cover_view(request: web.Request) -> web.Response:
    slug = request.match_info["slug"]
    if not _SLUG.match(slug):
        raise PageNotFound()
    return web.Response(text=cover_svg(slug), content_type="image/svg+xml", headers={
        "Cache-Control": "public, max-age=86400",
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"})


def cover_url(tour: dict[str, object]) -> str:
    """The tour's own cover when it is served by this site, else the one drawn here."""
    image = tour.get("imageCover")
    if isinstance(image, str) and image.startswith("/") and not image.startswith("//"):
        return image
    return f"/static/covers/{tour.get('slug') or tour.get('id')}.svg"
