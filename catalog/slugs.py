"""URL slugs: lowercase ASCII words joined by hyphens, derived from a title or name."""

from __future__ import annotations

import re
import unicodedata
import uuid

PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
MAX_LENGTH = 120
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")


def slugify(text: str) -> str:
    """"Visite guidée de la Tour Eiffel" → "visite-guidee-de-la-tour-eiffel".

    A text with no Latin letter or digit (e.g. only Japanese) gets a random slug: the admin may
    set a better one.
    """
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = _NOT_ALNUM.sub("-", ascii_text.lower()).strip("-")
    if len(slug) > MAX_LENGTH:
        slug = slug[:MAX_LENGTH].rsplit("-", 1)[0]
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
