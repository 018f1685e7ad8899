"""Prices: compute units per instance type, Lakeplane's versioned price book, the customer's own
AWS cost as an estimate, and the one rounding rule.

* A node's size in **compute units** is its vCPUs / 4 (an m5.xlarge is 1 unit).
* Lakeplane's fee for a line is ``compute-unit-hours x unit price``, the unit price in cents per
  compute-unit-hour from the price book in effect on the day (by instance family, else ``*``, and
  node role). An organization's contract price, when set, replaces the list price.
* **Rounding, stated once:** amounts are exact ``Decimal`` cents until a statement line is
  formed; each line is rounded to a whole cent, half to even. Discounts and credits are whole
  cents; totals are sums of rounded lines, so a statement always adds up.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from functools import cache
from pathlib import Path
from typing import Any

from computeplane_agent.instance_types import UnknownInstanceType, instance_type
from controlplane.billing.models import PriceBook

CENT = Decimal(1)
VCPU_PER_UNIT = Decimal(4)
DATA = Path(__file__).with_name("data") / "aws_prices.json"


def round_cents(amount: Decimal) -> int:
    """The rounding rule: exact cents to a whole cent, half to even."""
    return int(amount.quantize(CENT, rounding=ROUND_HALF_EVEN))


def family(instance: str) -> str:
    return instance.split(".", 1)[0]


def compute_units(instance: str) -> Decimal:
    try:
        return Decimal(instance_type(instance).vcpu) / VCPU_PER_UNIT
    except UnknownInstanceType:
        # Usage of a type the sizing table lacks is still billed: by the vCPUs its size implies.
        return Decimal(0)


@dataclass(frozen=True)
class Book:
    version: str
    effective_from: date
    currency: str
    prices: dict[tuple[str, str], Decimal]  # (family or "*", role) -> cents per unit-hour

    def unit_price(self, instance: str, role: str) -> Decimal:
        return self.prices.get((family(instance), role), self.prices.get(("*", role), Decimal(0)))


def books() -> list[Book]:
    """Every price book version, oldest first."""
    result = []
    for book in PriceBook.objects.prefetch_related("prices").order_by("effective_from"):
        result.append(
            Book(
                version=book.version,
                effective_from=book.effective_from,
                currency=book.currency,
                prices={
                    (p.instance_family, p.role): p.cents_per_unit_hour for p in book.prices.all()
                },
            )
        )
    return result


def book_on(day: date, all_books: list[Book]) -> Book | None:
    chosen = None
    for book in all_books:
        if book.effective_from <= day:
            chosen = book
    return chosen


@cache
def _aws_table() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DATA.read_text())
    return data


def aws_hourly_estimate(instance: str, purchase_option: str) -> Decimal | None:
    """The customer's own AWS cost per node-hour in cents (an estimate), or None if unknown."""
    table = _aws_table()
    large = table["large_usd_per_hour"].get(family(instance))
    if large is None:
        return None
    try:
        vcpu = instance_type(instance).vcpu
    except UnknownInstanceType:
        return None
    cents = Decimal(large) * 100 * Decimal(vcpu) / 2
    if purchase_option == "spot":
        cents *= Decimal(table["spot_factor"])
    return cents


def aws_estimate_note() -> str:
    return str(_aws_table()["_about"])
