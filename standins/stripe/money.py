"""Amounts in the smallest currency unit, and the limits Stripe puts on them per currency."""

from __future__ import annotations

import re

from standins.stripe.errors import InvalidRequest

# Stripe's minimum charge per settlement currency, in the smallest unit; 50 for the others.
MINIMUMS = {"usd": 50, "eur": 50, "gbp": 30, "chf": 50, "cad": 50, "aud": 50, "nzd": 50,
            "sgd": 50, "hkd": 400, "jpy": 50, "sek": 300, "nok": 300, "dkk": 250, "pln": 200,
            "czk": 1500, "ron": 200, "bgn": 100, "huf": 17500, "mxn": 1000, "brl": 50,
            "inr": 50, "aed": 200, "thb": 1000, "myr": 200}
ZERO_DECIMAL = frozenset({"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf",
                          "ugx", "vnd", "vuv", "xaf", "xof", "xpf"})
MAXIMUM = 99_999_999  # eight digits, whatever the currency
_SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥"}
_CURRENCY = re.compile(r"^[a-z]{3}$")


def currency(value: str) -> str:
    """A currency code as Stripe keeps it: lower case. Only its shape is checked."""
    code = value.lower()
    if not _CURRENCY.match(code):
        raise InvalidRequest(f"Invalid currency: {value}.", param="currency")
    return code


def show(amount: int, code: str) -> str:
    """`$50.00`, `¥500`, `12.50 sek`: amounts in messages, as Stripe writes them."""
    major = f"{amount:,}" if code in ZERO_DECIMAL else f"{amount / 100:,.2f}"
    symbol = _SYMBOLS.get(code)
    return f"{symbol}{major}" if symbol else f"{major} {code}"


def check_charge_amount(amount: int, code: str) -> None:
    minimum = MINIMUMS.get(code, 50)
    if amount < minimum:
        # Stripe names the currency after a symbol: "at least $0.50 usd".
        shown = show(minimum, code) + (f" {code}" if code in _SYMBOLS else "")
        raise InvalidRequest(f"Amount must be at least {shown}",
                             code="amount_too_small", param="amount")
    if amount > MAXIMUM:
        raise InvalidRequest(f"Amount must be no more than {show(MAXIMUM, code)}",
                             code="amount_too_large", param="amount")
