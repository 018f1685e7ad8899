"""``manage.py checkdrift``: run the drift checks of every account and plane now, inline.

The periodic ``check-drift`` beat task spreads these over an interval; this runs them at once
(after restoring a sandbox, or to see a repair took), prints each verdict and leaves the
periodic schedule as it was.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from controlplane.cloudaccounts.models import CloudAccount
from controlplane.computeplanes import drift
from controlplane.computeplanes.models import ComputePlane


class Command(BaseCommand):
    help = "Check every cloud account and compute plane for drift now and print the findings."

    def handle(self, *args: Any, **options: Any) -> None:
        accounts = CloudAccount.objects.filter(status__in=drift.CHECKED_ACCOUNT_STATUSES)
        for account_id in accounts.order_by("id").values_list("id", flat=True):
            self._show(account_id, drift.check_cloud_account(account_id))
        planes = ComputePlane.objects.filter(status__in=drift.CHECKED_PLANE_STATUSES)
        for plane_id in planes.order_by("id").values_list("id", flat=True):
            self._show(plane_id, drift.check_compute_plane(plane_id))

    def _show(self, resource_id: str, findings: list[dict[str, str]] | None) -> None:
        if findings is None:
            self.stdout.write(f"{resource_id}: not checked (busy, or AWS did not answer)\n")
        elif not findings:
            self.stdout.write(f"{resource_id}: ok\n")
        else:
            for finding in findings:
                self.stdout.write(f"{resource_id}: {finding['check']}: {finding['detail']}\n")
