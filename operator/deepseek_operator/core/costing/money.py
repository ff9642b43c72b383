"""Money as text: the one formatter every report, reason and table uses.

Amounts are plain floats in a currency named by its ISO 4217 code; this module only writes them.
"""

from __future__ import annotations

from collections.abc import Mapping

CURRENCY_SYMBOLS: Mapping[str, str] = {"USD": "$", "CNY": "¥", "EUR": "€", "GBP": "£", "JPY": "¥"}
"""Symbols written before an amount; any other currency is written as its code after it."""

THOUSANDS_FROM = 10_000
"""With ``thousands``, amounts from this size up are written in thousands ("12.3 k")."""


def format_money(
    amount: float | None,
    currency: str | None = None,
    *,
    digits: int | None = None,
    grouping: bool = True,
    thousands: bool = False,
) -> str:
    """One amount as text; "-" for None.

    ``currency`` None writes the bare number (tables whose title names the currency); a known
    currency is written as a symbol before the amount ("¥7.3"), any other as its code after it
    ("7.3 CHF"). ``digits`` None is compact: 1 decimal from 1 up, 3 below (a sentence's "¥0.034").
    ``grouping`` separates thousands with commas; ``thousands`` writes large amounts in thousands.
    """
    if amount is None:
        return "-"
    comma = "," if grouping else ""
    if thousands and abs(amount) >= THOUSANDS_FROM:
        number = f"{amount / 1000:{comma}.1f} k"
    else:
        places = digits if digits is not None else (1 if amount >= 1 else 3)
        number = f"{amount:{comma}.{places}f}"
    if currency is None:
        return number
    symbol = CURRENCY_SYMBOLS.get(currency)
    return f"{symbol}{number}" if symbol else f"{number} {currency}"
