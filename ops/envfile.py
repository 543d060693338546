"""`.env` loading: KEY=value lines that fill in the environment, never override it."""

from __future__ import annotations

import os
import re
from collections.abc import MutableMapping
from pathlib import Path

_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")


def parse(text: str) -> dict[str, str]:
    """`KEY=value` per line; `#` comments, blank lines and an `export ` prefix allowed; a value in
    single quotes is taken as is, in double quotes with `\\n`, `\\"` and `\\\\` unescaped."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _LINE.match(line)
        if not match:
            continue
        key, raw = match.groups()
        values[key] = _value(raw)
    return values


def _value(raw: str) -> str:
    if len(raw) >= 2 and raw[0] == raw[-1] == "'":
        return raw[1:-1]
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), raw[1:-1])
    # An unquoted value ends at a comment that follows whitespace.
    return re.split(r"\s+#", raw, maxsplit=1)[0]


def load(path: Path, environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Set every variable of `path` that `environ` (default: os.environ) lacks; returns those set.

    The real environment wins so that `AMQP_URL=... ./ops/dev up` does what it says.
    """
    environ = os.environ if environ is None else environ
    if not path.is_file():
        return {}
    added = {key: value for key, value in parse(path.read_text()).items() if key not in environ}
    environ.update(added)
    return added
