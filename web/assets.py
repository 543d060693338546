"""Static files under names that carry their content's hash (`site.3f2a9c1e.css`), so that they
can be cached for a year and still change the moment their content does."""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from web.errors import PageNotFound

STATIC = Path(__file__).parent / "static"
YEAR = 365 * 24 * 3600


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str


class Assets:
    """Every file of `static/`, read once at start: `url("css/site.css")` is its hashed URL."""

    def __init__(self, folder: Path = STATIC) -> None:
        self.urls: dict[str, str] = {}
        self.files: dict[str, Asset] = {}
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            name = path.relative_to(folder).as_posix()
            body = path.read_bytes()
            digest = hashlib.sha256(body).hexdigest()[:12]
            stem, dot, suffix = name.rpartition(".")
            hashed = f"{stem}.{digest}.{suffix}" if dot else f"{name}.{digest}"
            kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
            if kind.startswith("text/") or kind in ("application/javascript", "image/svg+xml"):
                kind += "; charset=utf-8"
            self.urls[name] = f"/static/{hashed}"
            self.files[hashed] = Asset(body, kind)

    def url(self, name: str) -> str:
        return self.urls[name]


ASSETS: web.AppKey[Assets] = web.AppKey("assets", Assets)


async def static_view(request: web.Request) -> web.Response:
    asset = request.app[ASSETS].files.get(request.match_info["name"])
    if asset is None:
        raise PageNotFound()
    return web.Response(body=asset.body, headers={
        "Content-Type": asset.content_type,
        "Cache-Control": f"public, max-age={YEAR}, immutable"})
