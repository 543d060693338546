"""URL slugs: lowercase ASCII words joined by hyphens, derived from a title or name."""

from __future__ import annotations

import re
import unicodedata
import uuid

_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
PATTERN = f"^{_SLUG.pattern}$"
MAX_LENGTH = 120
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")


def slugify(text: str) -> str:
    """"Visite guidée de la Tour Eiffel" → "visite-guidee-de-la-tour-eiffel".

    A text with no Latin letter or digit (e.g. only Japanese) gets a random slug: the admin may
    set a better one. A text that slugs to something shaped like a UUID (a title that is an id)
    gets an `item-` prefix: paths read a UUID as an id, so that slug could never be found.
    """
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = _NOT_ALNUM.sub("-", ascii_text.lower()).strip("-")
    if len(slug) > MAX_LENGTH:
        slug = slug[:MAX_LENGTH].rsplit("-", 1)[0]
    if looks_like_id(slug):
        return f"item-{slug}"
    return slug or f"item-{uuid.uuid4().hex[:8]}"


def looks_like_id(value: str) -> bool:
    """Paths take an id or a slug; a slug shaped like a UUID could never be reached."""
    return isinstance(id_or_slug(value), uuid.UUID)


def id_or_slug(value: str) -> uuid.UUID | str:
    """What a path or filter names: an id when the value is a UUID, else a slug."""
    try:
        return uuid.UUID(value)
    except ValueError:
        return value


def lookup_key(value: str) -> uuid.UUID | str | None:
    """What a path segment names: an id, a slug, or None when it can be neither (a NUL byte,
    spaces, capitals...), which names nothing: a 404 without asking the database, which would
    refuse some of these bytes with an error rather than find nothing."""
    key = id_or_slug(value)
    if isinstance(key, str) and not (len(key) <= MAX_LENGTH and _SLUG.fullmatch(key)):
        return None
    return key
