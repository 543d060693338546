"""What each role may do on the operators' pages, as the API's role matrix says (docs/auth.md):
a page offers a visitor only what the API would let them do, and refuses the rest itself."""

from __future__ import annotations

from typing import Any

from web.i18n import gettext as _

OPERATORS = frozenset({"manager", "admin"})
# Everything else an operator page offers is a manager's too.
ADMIN_ONLY = frozenset({
    "refund",  # POST /api/payments/{id}/refund
    "resolve",  # POST /api/payments/{id}/anomalies/resolve
    "users",  # /api/admin/users
    "breakers",  # /circuit-breaker/status and reset
})


def may(user: dict[str, Any] | None, action: str) -> bool:
    """Whether the signed-in `user` may do `action` (an operator's action: see ADMIN_ONLY)."""
    role = (user or {}).get("role")
    if role not in OPERATORS:
        return False
    return role == "admin" or action not in ADMIN_ONLY


def role_name(role: str) -> str:
    names = {"customer": _("Traveller"), "manager": _("Manager"), "admin": _("Administrator")}
    return names.get(role, role)
