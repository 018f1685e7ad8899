"""``manage.py billing_replay_month --org demo [--month YYYY-MM]``: a generated month of usage."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from controlplane.billing.budgets import check_budgets
from controlplane.billing.replay import replay_month
from controlplane.billing.statements import Month, profile_of, statement


class Command(BaseCommand):
    help = (
        "Replay a generated month of cluster events and agent usage reports for an organization "
        "(three clusters on a plane named 'replay'), rebuild its rollups and check budgets."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--org", required=True, help="the organization's slug")
        parser.add_argument(
            "--month", help="YYYY-MM; default: this month so far (in the organization's zone)"
        )
        parser.add_argument("--days", type=int, help="replay only the month's first N days")

    def handle(self, *args: Any, **options: Any) -> None:
        from controlplane.tenancy.models import Organization

        organization = Organization.objects.filter(slug=options["org"]).first()
        if organization is None:
            raise CommandError(f"no organization {options['org']!r} (make run creates 'demo')")
        now = timezone.now()
        if options["month"]:
            try:
                month = Month.parse(options["month"])
            except ValueError:
                raise CommandError(f"{options['month']!r} is not a month (YYYY-MM)") from None
        else:
            from zoneinfo import ZoneInfo

            month = Month.of(now.astimezone(ZoneInfo(profile_of(organization).time_zone)).date())
        if options["days"] is not None and options["days"] < 1:
            raise CommandError("--days must be at least 1")
        try:
            counts = replay_month(organization, month, now=now, days=options["days"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        s = statement(organization, month, now=now)
        alerts = check_budgets(now)
        self.stdout.write(
            f"replayed {month} for {organization.slug}: {counts['start']:%Y-%m-%d %H:%M} .. "
            f"{counts['end']:%Y-%m-%d %H:%M} UTC, {counts['events']} cluster events, "
            f"{counts['reports']} usage report samples; rebuilt {counts['minutes']} minute facts, "
            f"{counts['hours']} hourly and {counts['days']} daily rollups"
        )
        forecast = (
            ""
            if s.forecast_total_cents is None
            else f" (forecast for the month {s.forecast_total_cents / 100:.2f})"
        )
        self.stdout.write(
            f"statement {month}: total {s.total_cents / 100:.2f} {s.currency}{forecast}; "
            f"budget alerts sent: {len(alerts)}"
        )
