from __future__ import annotations

from zoneinfo import available_timezones

from rest_framework import serializers

from controlplane.billing.models import BillingProfile, MeteringRecord

_ZONES = frozenset(available_timezones())


class BillingSettingsSerializer(serializers.ModelSerializer[BillingProfile]):
    monthly_budget_cents = serializers.IntegerField(
        min_value=1,
        max_value=10**13,
        allow_null=True,
        required=False,
        help_text="The monthly budget in cents; alerts at 50/80/100 % of actual or forecast spend.",
    )
    marketplace_registration_token = serializers.CharField(
        write_only=True,
        required=False,
        max_length=2048,
        help_text="The token AWS Marketplace sent at sign-up; exchanged with ResolveCustomer.",
    )

    class Meta:
        model = BillingProfile
        fields = [
            "time_zone",
            "monthly_budget_cents",
            "discount_percent",
            "contract_cents_per_unit_hour",
            "marketplace_customer",
            "marketplace_product",
            "marketplace_account",
            "marketplace_registration_token",
            "updated_at",
        ]
        read_only_fields = [
            "discount_percent",
            "contract_cents_per_unit_hour",
            "marketplace_customer",
            "marketplace_product",
            "marketplace_account",
            "updated_at",
        ]

    def validate_time_zone(self, value: str) -> str:
        if value not in _ZONES:
            raise serializers.ValidationError(f"{value!r} is not an IANA time zone.")
        return value


class MeteringRecordSerializer(serializers.ModelSerializer[MeteringRecord]):
    class Meta:
        model = MeteringRecord
        fields = [
            "hour",
            "dimension",
            "quantity",
            "status",
            "attempts",
            "metering_record_id",
            "reason",
            "sent_at",
            "next_attempt_at",
        ]
