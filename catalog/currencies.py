"""The currencies a tour may be priced in, and their minor units, from Babel's copy of the Unicode
CLDR: the ISO 4217 codes that are legal tender in some territory on a given day. Funds, metals,
ISO's testing and "no currency" codes, and withdrawn codes (BGN since the euro) price nothing."""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime

from babel.core import get_global
from babel.numbers import get_currency_precision, get_territory_currencies


@functools.lru_cache(maxsize=4)
def in_circulation(on: date) -> frozenset[str]:
    """Every code that is legal tender somewhere on `on`."""
    return frozenset(code for territory in get_global("territory_currencies")
                     for code in get_territory_currencies(territory, on, tender=True))


def is_in_circulation(code: str) -> bool:
    return code in in_circulation(datetime.now(UTC).date())


def minor_units(code: str) -> int:
    """Digits after the decimal point of a price in `code`: 8999 EUR is 89.99, 8999 JPY is 8999,
    8999 KWD is 8.999. Only for codes `is_in_circulation` accepts (Babel answers 2 for any other
    string)."""
    digits: int = get_currency_precision(code)
    return digits
