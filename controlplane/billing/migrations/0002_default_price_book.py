"""Lakeplane's first list prices (cents per compute-unit-hour; a compute unit is 4 vCPUs)."""

from decimal import Decimal

from django.db import migrations

PRICES = [
    ("*", "coordinator", "5.0000"),
    ("*", "worker", "5.0000"),
    ("*", "cache", "2.5000"),
    ("*", "metastore", "0.0000"),
    ("*", "gateway", "0.0000"),
    # Graviton workers cost less to run; the fee follows.
    ("m7g", "worker", "4.5000"),
    ("r7g", "worker", "4.5000"),
    ("c7g", "worker", "4.5000"),
]


def seed(apps, schema_editor):
    PriceBook = apps.get_model("billing", "PriceBook")
    Price = apps.get_model("billing", "Price")
    book, created = PriceBook.objects.get_or_create(
        version="2026-01", defaults={"effective_from": "2026-01-01", "note": "Launch prices"}
    )
    if created:
        Price.objects.bulk_create(
            Price(book=book, instance_family=f, role=r, cents_per_unit_hour=Decimal(c))
            for f, r, c in PRICES
        )


def unseed(apps, schema_editor):
    apps.get_model("billing", "PriceBook").objects.filter(version="2026-01").delete()


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]
