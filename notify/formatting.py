"""Money, dates and addresses as people read them in messages (and as logs may show them).

Amounts travel as integers in minor units, as Stripe counts them: most currencies have two
decimals, Stripe's zero-decimal ones (JPY, KRW...) none, and a few three. 8999 EUR is
"89.99 EUR", 5000 JPY is "5,000 JPY".
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal

# Stripe's lists (https://docs.stripe.com/currencies#zero-decimal): the currencies whose
# amounts are not in hundredths.
ZERO_DECIMAL = frozenset({"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF",
                          "VND", "VUV", "XAF", "XOF", "XPF"})
THREE_DECIMAL = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})


def decimals(currency: str) -> int:
    code = currency.upper()
    if code in ZERO_DECIMAL:
        return 0
    return 3 if code in THREE_DECIMAL else 2


def money(amount: int, currency: str) -> str:
    """`money(8999, "EUR")` is "89.99 EUR"; thousands are separated by commas."""
    places = decimals(currency)
    major = Decimal(amount).scaleb(-places)
    return f"{major:,.{places}f} {currency.upper()}"


def day(value: date) -> str:
    """"Sunday 14 March 2027": the weekday helps, and no reader mistakes day and month."""
    return f"{value:%A} {value.day} {value:%B %Y}"


def moment(value: datetime) -> str:
    """"14 March 2027, 10:15 UTC"."""
    value = value.astimezone(UTC)
    return f"{value.day} {value:%B %Y, %H:%M} UTC"


def mask(recipient: str) -> str:
    """For logs: enough to tell messages apart, not enough to read the address or number."""
    if "@" in recipient:
        local, _, domain = recipient.partition("@")
        return f"{local[:1]}***@{domain}"
    return f"{recipient[:3]}***{recipient[-2:]}" if len(recipient) > 6 else "***"


def masked_in(text: str, recipient: str) -> str:
    """`text` (a server's or provider's error) with `recipient` masked wherever it is quoted:
    SMTP servers echo the address they refuse, SMS providers the number."""
    if not recipient:
        return text
    return re.sub(re.escape(recipient), mask(recipient), text, flags=re.IGNORECASE)
