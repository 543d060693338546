"""What every resource shares: list pages (`limit`, `starting_after`, `ending_before`,
`has_more`) and `expand[]`, which replaces an id with the object it names."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable
from typing import Any

from standins.stripe.errors import InvalidRequest, NotEmulated, no_such
from standins.stripe.params import Form

Obj = dict[str, Any]
_ID = re.compile(r"^[a-z]+_[A-Za-z0-9]+$")
MAX_DEPTH = 4  # Stripe expands at most four levels deep


def page(newest_first: Iterable[Obj], form: Form, url: str, kind: str) -> Obj:
    """One page of a list, as `GET /v1/<resource>` answers it. Reads the paging parameters."""
    limit = form.integer("limit")
    limit = 10 if limit is None else limit
    if not 1 <= limit <= 100:
        raise InvalidRequest("Invalid limit: must be between 1 and 100", param="limit")
    after, before = form.string("starting_after"), form.string("ending_before")
    if after and before:
        raise InvalidRequest("You may only specify one of these parameters: ending_before, "
                             "starting_after.")
    objects = list(newest_first)
    ids = [obj["id"] for obj in objects]
    cursor = after or before
    if cursor is not None and cursor not in ids:
        raise no_such(kind, cursor, param="starting_after" if after else "ending_before",
                      status=400)
    if after:
        rest = objects[ids.index(after) + 1:]
        chosen, has_more = rest[:limit], len(rest) > limit
    elif before:
        rest = objects[:ids.index(before)]
        chosen, has_more = rest[-limit:], len(rest) > limit
    else:
        chosen, has_more = objects[:limit], len(objects) > limit
    return {"object": "list", "data": chosen, "has_more": has_more, "url": url}


def filtered_page(objects: dict[str, Obj], form: Form, url: str, kind: str,
                  *filters: str) -> Obj:
    """`GET /v1/<resource>`: one page of `objects` (held oldest first), newest first, narrowed
    to those whose field equals each of `filters` (`customer`, `payment_intent`...) given."""
    wanted = {name: value for name in filters if (value := form.string(name)) is not None}
    found = [obj for obj in reversed(objects.values())
             if all(obj[name] == value for name, value in wanted.items())]
    result = page(found, form, url, kind)
    form.finish()
    return result


def expand(obj: Obj, paths: list[str], find: Callable[[str], Obj | None]) -> Obj:
    """A copy of `obj` with each dotted path (`latest_charge`, `data.payment_intent`) expanded."""
    result = copy.deepcopy(obj)
    for path in paths:
        parts = path.split(".")
        if len(parts) > MAX_DEPTH + (1 if parts[0] == "data" else 0):
            raise InvalidRequest(f"You cannot expand more than {MAX_DEPTH} levels of a "
                                 f"property. Property: {path}", param="expand")
        _expand(result, parts, find, path)
    return result


def _expand(node: Obj, parts: list[str], find: Callable[[str], Obj | None], path: str) -> None:
    head, rest = parts[0], parts[1:]
    if node.get("object") == "list" and head == "data" and rest:
        for item in node["data"]:
            _expand(item, rest, find, path)
        return
    value = node.get(head)
    if isinstance(value, str):
        if not _ID.match(value):
            raise InvalidRequest(f"This property cannot be expanded ({path}).", param="expand")
        target = find(value)
        if target is None:
            raise NotEmulated(f"expanding {path} (the stand-in holds no {value.split('_')[0]}_ "
                              "objects)", param="expand")
        node[head] = value = copy.deepcopy(target)
    elif head not in node or (value is not None and not isinstance(value, dict)):
        raise InvalidRequest(f"This property cannot be expanded ({path}).", param="expand")
    if rest and isinstance(value, dict):
        _expand(value, rest, find, path)
