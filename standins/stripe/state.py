"""What the stand-in holds, in memory only: one test-mode account's objects by id, in the order
they were made (lists are newest first, as Stripe's are)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from standins.stripe.cards import TestCard
from standins.stripe.errors import no_such
from standins.stripe.events import EventLog

Obj = dict[str, Any]

# What each id prefix names, for lookups by id (expansions) and Stripe's "No such ..." wording.
KINDS = {"pi": "payment_intent", "ch": "charge", "re": "refund", "pm": "PaymentMethod",
         "evt": "event"}


@dataclass
class Account:
    events: EventLog
    payment_intents: dict[str, Obj] = field(default_factory=dict)
    charges: dict[str, Obj] = field(default_factory=dict)
    refunds: dict[str, Obj] = field(default_factory=dict)
    payment_methods: dict[str, Obj] = field(default_factory=dict)
    cards: dict[str, TestCard] = field(default_factory=dict)
    """The test card behind each PaymentMethod, which decides how a payment with it ends."""

    def table(self, prefix: str) -> dict[str, Obj]:
        tables = {"pi": self.payment_intents, "ch": self.charges, "re": self.refunds,
                  "pm": self.payment_methods, "evt": self.events.events}
        return tables.get(prefix, {})

    def find(self, object_id: str) -> Obj | None:
        return self.table(object_id.split("_", 1)[0]).get(object_id)

    def get(self, object_id: str, kind: str, *, param: str = "id", status: int = 404) -> Obj:
        """The object, if `object_id` names one of `kind` (a prefix: "pi", "ch"...)."""
        found = self.table(kind).get(object_id)
        if found is None:
            raise no_such(KINDS[kind], object_id, param=param, status=status)
        return found


def now() -> int:
    return int(time.time())
