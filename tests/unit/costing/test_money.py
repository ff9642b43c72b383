"""The one money formatter: sentences, tables, unknown currencies."""

from __future__ import annotations

import pytest

from deepseek_operator.core.costing.money import format_money


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        (7.283, "CNY", "¥7.3"),
        (0.0341, "USD", "$0.034"),
        (1234.5, "CNY", "¥1234.5"),
        (12.5, "CHF", "12.5 CHF"),
    ],
)
def test_sentence_money_has_a_symbol_and_compact_digits(
    amount: float, currency: str, expected: str
) -> None:
    assert format_money(amount, currency, grouping=False) == expected


@pytest.mark.parametrize(
    ("amount", "digits", "expected"),
    [
        (None, 2, "-"),
        (1234.567, 2, "1,234.57"),
        (9_999.4, 0, "9,999"),
        (12_345.0, 0, "12.3 k"),
        (-25_000.0, 2, "-25.0 k"),
    ],
)
def test_table_money_is_bare_grouped_and_in_thousands_when_large(
    amount: float | None, digits: int, expected: str
) -> None:
    assert format_money(amount, digits=digits, thousands=True) == expected


def test_without_thousands_large_amounts_are_written_in_full() -> None:
    assert format_money(12_345.678, digits=2) == "12,345.68"
    assert format_money(12_345.678, digits=2, grouping=False) == "12345.68"
