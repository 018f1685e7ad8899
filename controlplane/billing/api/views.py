"""Billing API (API.md "Billing"): usage, statements (JSON, CSV, PDF), settings, metering.

Who sees money: owners and admins. Members and viewers see node-hours of the organization's
clusters in ``usage`` but no amounts, and get 403 on statements.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import exceptions
from rest_framework.decorators import action, api_view, permission_classes
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from controlplane.billing import documents, services
from controlplane.billing.api.serializers import BillingSettingsSerializer, MeteringRecordSerializer
from controlplane.billing.models import BillingProfile, MeteringRecord, MeteringStatus
from controlplane.billing.prices import aws_estimate_note, aws_hourly_estimate, books, compute_units
from controlplane.billing.statements import (
    GROUPS,
    Month,
    day_range_ok,
    months_with_usage,
    profile_of,
    statement,
    usage,
)
from controlplane.core.errors import InvalidInput
from controlplane.core.roles import Role, role_at_least
from controlplane.tenancy.viewsets import OrgScopedViewSet


class _PassThrough(BaseRenderer):
    """Writes bytes/text the view made; anything else (an error body) as JSON."""

    charset: str | None = None

    def render(
        self, data: Any, accepted_media_type: Any = None, renderer_context: Any = None
    ) -> Any:
        if isinstance(data, bytes | str):
            return data
        return json.dumps(data).encode()


class CSVRenderer(_PassThrough):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"


class PDFRenderer(_PassThrough):
    media_type = "application/pdf"
    format = "pdf"


def _parse_date(value: str | None, name: str, errors: dict[str, list[str]]) -> date | None:
    if not value:
        errors[name] = ["This parameter is required (YYYY-MM-DD)."]
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        errors[name] = [f"{value!r} is not a date (YYYY-MM-DD)."]
        return None


def _month(text: str) -> Month:
    try:
        return Month.parse(text)
    except ValueError:
        raise InvalidInput(
            "The month is not valid.", errors={"month": [f"{text!r} is not a month (YYYY-MM)."]}
        ) from None


class BillingViewSet(OrgScopedViewSet):
    queryset = BillingProfile.objects.all()
    serializer_class = BillingSettingsSerializer
    pagination_class = None
    action_roles = {
        "usage": Role.VIEWER,
        "statements": Role.ADMIN,
        "statement": Role.ADMIN,
        "statement_file": Role.ADMIN,
        "metering": Role.ADMIN,
        "billing_settings": Role.ADMIN,  # reading; changing them needs the owner (below)
    }

    def get_renderers(self) -> list[BaseRenderer]:
        if getattr(self, "action", None) == "statement":
            return [JSONRenderer(), CSVRenderer(), PDFRenderer()]
        return super().get_renderers()

    @property
    def may_read_money(self) -> bool:
        return role_at_least(self.role, Role.ADMIN)

    @extend_schema(
        parameters=[
            OpenApiParameter("start", OpenApiTypes.DATE, required=True),
            OpenApiParameter("end", OpenApiTypes.DATE, required=True),
            OpenApiParameter("group_by", OpenApiTypes.STR, enum=list(GROUPS)),
        ],
        responses=OpenApiTypes.OBJECT,
    )
    @action(detail=False, methods=["get"], url_path="billing/usage")
    def usage(self, request: Request, **kwargs: Any) -> Response:
        errors: dict[str, list[str]] = {}
        start = _parse_date(request.query_params.get("start"), "start", errors)
        end = _parse_date(request.query_params.get("end"), "end", errors)
        group_by = request.query_params.get("group_by", "day")
        if group_by not in GROUPS:
            errors["group_by"] = [f"Choose one of {', '.join(GROUPS)}."]
        if start and end and not day_range_ok(start, end):
            errors["end"] = ["end must be after start, at most 366 days later."]
        if errors:
            raise InvalidInput("The usage query is not valid.", errors=errors)
        assert start is not None
        assert end is not None
        return Response(
            usage(self.organization, start, end, group_by, with_amounts=self.may_read_money)
        )

    @extend_schema(operation_id="orgs_billing_statements_list", responses=OpenApiTypes.OBJECT)
    @action(detail=False, methods=["get"], url_path="billing/statements")
    def statements(self, request: Request, **kwargs: Any) -> Response:
        months = []
        for month in months_with_usage(self.organization):
            s = statement(self.organization, month)
            months.append(
                {
                    "month": str(month),
                    "status": "final" if s.final else "month_to_date",
                    "total_cents": s.total_cents,
                    "forecast_total_cents": s.forecast_total_cents,
                    "currency": s.currency,
                    "url": f"/api/v1/orgs/{self.organization.slug}/billing/statements/{month}",
                }
            )
        return Response({"results": months})

    @extend_schema(
        operation_id="orgs_billing_statement_retrieve",
        responses={
            (200, "application/json"): OpenApiTypes.OBJECT,
            (200, "text/csv"): OpenApiTypes.STR,
            (200, "application/pdf"): OpenApiTypes.BINARY,
        },
    )
    @action(
        detail=False,
        methods=["get"],
        url_path=r"billing/statements/(?P<month>[0-9]{4}-[0-9]{2})",
    )
    def statement(self, request: Request, month: str, **kwargs: Any) -> Any:
        """The month's statement; ``Accept: text/csv`` or ``application/pdf`` for a file."""
        return self._statement(month, request.accepted_renderer.media_type)

    @extend_schema(
        responses={
            (200, "text/csv"): OpenApiTypes.STR,
            (200, "application/pdf"): OpenApiTypes.BINARY,
        }
    )
    @action(
        detail=False,
        methods=["get"],
        url_path=r"billing/statements/(?P<month>[0-9]{4}-[0-9]{2})\.(?P<fmt>csv|pdf)",
    )
    def statement_file(self, request: Request, month: str, fmt: str, **kwargs: Any) -> Any:
        """The statement as ``.csv`` (a line per day, cluster and instance type) or ``.pdf``."""
        return self._statement(month, {"csv": "text/csv", "pdf": "application/pdf"}[fmt])

    def _statement(self, month: str, media: str) -> Any:
        period = _month(month)
        org = self.organization
        if media == "text/csv":
            body = documents.as_csv(org, period).encode()
            return self._download(body, "text/csv; charset=utf-8", f"{org.slug}-{period}.csv")
        s = statement(org, period)
        if media == "application/pdf":
            return self._download(
                documents.as_pdf(s), "application/pdf", f"{org.slug}-{period}.pdf"
            )
        return Response(documents.as_json(s))

    @staticmethod
    def _download(body: bytes, content_type: str, filename: str) -> HttpResponse:
        response = HttpResponse(body, content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response

    @extend_schema(request=BillingSettingsSerializer, responses=BillingSettingsSerializer)
    @action(detail=False, methods=["get", "patch"], url_path="billing/settings")
    def billing_settings(self, request: Request, **kwargs: Any) -> Response:
        profile = profile_of(self.organization)
        if request.method == "GET":
            return Response(BillingSettingsSerializer(profile).data)
        if not role_at_least(self.role, Role.OWNER):
            raise exceptions.PermissionDenied("Changing billing settings needs the owner role.")
        serializer = BillingSettingsSerializer(profile, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        changes = dict(serializer.validated_data)
        token = changes.pop("marketplace_registration_token", None)
        if token:
            changes.update(_resolve(token))
        services.update_settings(
            actor=self.actor, organization=self.organization, profile=profile, changes=changes
        )
        return Response(BillingSettingsSerializer(profile).data)

    @extend_schema(
        parameters=[OpenApiParameter("status", OpenApiTypes.STR, enum=MeteringStatus.values)],
        responses=inline_serializer(
            "MeteringRecordList", {"results": MeteringRecordSerializer(many=True)}
        ),
    )
    @action(detail=False, methods=["get"], url_path="billing/metering")
    def metering(self, request: Request, **kwargs: Any) -> Response:
        records = MeteringRecord.objects.filter(organization=self.organization).order_by("-hour")
        status = request.query_params.get("status")
        if status:
            if status not in dict(MeteringRecord._meta.get_field("status").choices or []):
                raise InvalidInput(
                    "Unknown status.", errors={"status": [f"{status!r} is not a status."]}
                )
            records = records.filter(status=status)
        return Response({"results": MeteringRecordSerializer(records[:500], many=True).data})


def _resolve(token: str) -> dict[str, str]:
    from botocore.exceptions import BotoCoreError, ClientError

    from controlplane.billing.metering import resolve_customer

    try:
        found = resolve_customer(token)
    except (ClientError, BotoCoreError) as exc:
        raise InvalidInput(
            "AWS Marketplace did not accept the registration token.",
            errors={"marketplace_registration_token": [str(exc)[:300]]},
        ) from None
    return {
        "marketplace_customer": found["customer"],
        "marketplace_product": found["product"],
        "marketplace_account": found["account"],
    }


@extend_schema(responses=OpenApiTypes.OBJECT)
@api_view(["GET"])
@permission_classes([IsAuthenticated])
def price_book(request: Request) -> Response:
    from computeplane_agent.instance_types import INSTANCE_TYPES

    all_books = books()
    return Response(
        {
            "currency": all_books[-1].currency if all_books else "USD",
            "compute_unit": "4 vCPUs of an instance (an m5.xlarge is 1 compute unit)",
            "unit_price": "cents per compute-unit-hour, by instance family ('*' for any) and role",
            "books": [
                {
                    "version": b.version,
                    "effective_from": b.effective_from.isoformat(),
                    "prices": [
                        {"instance_family": fam, "role": role, "cents_per_unit_hour": str(price)}
                        for (fam, role), price in sorted(b.prices.items())
                    ],
                }
                for b in all_books
            ],
            "instance_types": [
                {
                    "instance_type": name,
                    "compute_units": str(compute_units(name)),
                    "aws_on_demand_cents_per_hour_estimate": _str(
                        aws_hourly_estimate(name, "on_demand")
                    ),
                }
                for name in sorted(INSTANCE_TYPES)
            ],
            "aws_estimate_note": aws_estimate_note(),
        }
    )


def _str(value: Any) -> str | None:
    return None if value is None else str(value.quantize(value.__class__("0.0001")))
