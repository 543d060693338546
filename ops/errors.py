"""The one exception the CLI turns into a plain message instead of a traceback."""

from __future__ import annotations


class OpsError(Exception):
    """An expected failure (a server down, a package missing); the message says what to do."""
