"""Stripe's form encoding read back, and typed getters that refuse a bad value the way Stripe does.

The SDK sends `metadata[bookingId]=b1&expand[0]=latest_charge&confirm=true`: nested keys in
brackets, lists with indexes (or `[]` from other clients), booleans as `true`/`false`. `decode`
makes nested dicts of it (lists stay dicts keyed "0", "1"... until a getter asks for a list);
a `Form` hands out typed values, and `finish()` refuses whatever no getter asked for, as Stripe
answers `parameter_unknown` rather than ignoring a misspelt parameter.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from standins.stripe.errors import InvalidRequest, missing, one_of, unknown

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_SEGMENT = re.compile(r"\[([^\[\]]*)\]")
_INTEGER = re.compile(r"^-?\d{1,18}$")
# Stripe's documented metadata limits.
METADATA_KEYS, METADATA_KEY_LENGTH, METADATA_VALUE_LENGTH = 50, 40, 500


def decode(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Nested dicts (and `[]` lists) from form pairs; a key used both as a value and as a hash
    is refused, as Stripe refuses it."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        match = _KEY.match(key)
        if match is None:
            raise InvalidRequest(f"Invalid parameter name: {key}", param=key)
        path = [match.group(1), *_SEGMENT.findall(match.group(2))]
        if path[-1] == "":
            items = _walk(root, path[:-2], key).setdefault(path[-2], [])
            if not isinstance(items, list):
                raise InvalidRequest(f"Invalid array: {key}", param=key)
            items.append(value)
            continue
        node = _walk(root, path[:-1], key)
        if isinstance(node.get(path[-1]), dict | list):
            raise InvalidRequest(f"Invalid string: {_name(path)} is a hash", param=_name(path))
        node[path[-1]] = value
    return root


def _walk(root: dict[str, Any], path: list[str], key: str) -> dict[str, Any]:
    """The hash at `path`, made on the way."""
    node = root
    for depth, segment in enumerate(path):
        if segment == "":
            raise InvalidRequest(f"Invalid array: {key} (a list of hashes is indexed: "
                                 "name[0][field])", param=key)
        child = node.setdefault(segment, {})
        if not isinstance(child, dict):
            name = _name(path[:depth + 1])
            raise InvalidRequest(f"Invalid hash: {name}", param=name)
        node = child
    return node


def _name(path: list[str]) -> str:
    return path[0] + "".join(f"[{segment}]" for segment in path[1:])


class Form:
    """One request's parameters (or one hash among them, named by `prefix`)."""

    def __init__(self, values: dict[str, Any], prefix: str = "") -> None:
        self._values = values
        self._prefix = prefix
        self._read: set[str] = set()
        self._children: list[Form] = []

    def name(self, key: str) -> str:
        return f"{self._prefix}[{key}]" if self._prefix else key

    def has(self, key: str) -> bool:
        return key in self._values

    def raw(self) -> dict[str, Any]:
        return self._values

    def _take(self, key: str) -> Any:
        self._read.add(key)
        return self._values.get(key)

    def string(self, key: str, *, required: bool = False,
               choices: tuple[str, ...] | None = None) -> str | None:
        value = self._take(key)
        if value is None or (value == "" and not required and choices is None):
            if required:
                raise missing(self.name(key))
            return None
        if not isinstance(value, str):
            raise InvalidRequest(f"Invalid string: {self.name(key)} must be a string, not a hash",
                                 param=self.name(key))
        if choices is not None and value not in choices:
            raise InvalidRequest(f"Invalid {self.name(key)}: must be one of {one_of(choices)}",
                                 param=self.name(key))
        return value

    def integer(self, key: str, *, required: bool = False) -> int | None:
        value = self._take(key)
        if value is None:
            if required:
                raise missing(self.name(key))
            return None
        if not isinstance(value, str) or not _INTEGER.match(value):
            shown = value if isinstance(value, str) else "a hash"
            raise InvalidRequest(f"Invalid integer: {shown}", code="parameter_invalid_integer",
                                 param=self.name(key))
        return int(value)

    def boolean(self, key: str) -> bool | None:
        value = self._take(key)
        if value is None or value == "":
            return None
        if value not in ("true", "false"):
            raise InvalidRequest(f"Invalid boolean: {value}", param=self.name(key))
        return bool(value == "true")

    def strings(self, key: str) -> list[str] | None:
        """A list: `key[0]=a&key[1]=b` (as the SDK sends it) or `key[]=a&key[]=b`."""
        value = self._take(key)
        if value is None:
            return None
        if isinstance(value, dict) and all(k.isdigit() for k in value):
            value = [value[k] for k in sorted(value, key=int)]
        if value == "":
            return []
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise InvalidRequest(f"Invalid array: {self.name(key)}", param=self.name(key))
        return value

    def nested(self, key: str) -> Form | None:
        value = self._take(key)
        if value is None or value == "":
            return None
        if not isinstance(value, dict):
            raise InvalidRequest(f"Invalid object: {self.name(key)} must be a hash",
                                 param=self.name(key))
        child = Form(value, self.name(key))
        self._children.append(child)
        return child

    def metadata(self, key: str = "metadata") -> dict[str, str] | None:
        """The hash as sent: `""` values are kept (an update deletes those keys), and `metadata=`
        alone is `{}` with every key to delete: see `merge_metadata`."""
        value = self._take(key)
        if value is None:
            return None
        if value == "":
            return {}
        if not isinstance(value, dict):
            raise InvalidRequest("Invalid object: metadata must be a hash of strings",
                                 param=self.name(key))
        if len(value) > METADATA_KEYS:
            raise InvalidRequest(f"Invalid metadata: metadata can have up to {METADATA_KEYS} "
                                 "keys", param=self.name(key))
        for name, item in value.items():
            param = f"{self.name(key)}[{name}]"
            if not isinstance(item, str):
                raise InvalidRequest(f"Invalid string: {param} must be a string", param=param)
            if len(name) > METADATA_KEY_LENGTH:
                raise InvalidRequest(f"Invalid metadata: key names can be up to "
                                     f"{METADATA_KEY_LENGTH} characters long", param=param)
            if len(item) > METADATA_VALUE_LENGTH:
                raise InvalidRequest(f"Invalid metadata: values can be up to "
                                     f"{METADATA_VALUE_LENGTH} characters long", param=param)
        return dict(value)

    def finish(self) -> None:
        """Refuse the first parameter (in name order) that nothing read."""
        for key in sorted(self._values):
            if key not in self._read:
                raise unknown(self.name(key))
        for child in self._children:
            child.finish()


def merge_metadata(current: dict[str, str], update: dict[str, str] | None,
                   *, cleared: bool = False) -> dict[str, str]:
    """Stripe's update rule: keys are merged, a key set to `""` is deleted, `metadata=""`
    (`cleared`) deletes them all first."""
    merged = {} if cleared else dict(current)
    for key, value in (update or {}).items():
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged
