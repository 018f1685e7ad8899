from django.contrib import admin

from controlplane.billing.models import BillingProfile, Credit, MeteringRecord, Price, PriceBook


class PriceInline(admin.TabularInline):  # type: ignore[type-arg]
    model = Price
    extra = 0


@admin.register(PriceBook)
class PriceBookAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("version", "effective_from", "currency")
    inlines = [PriceInline]


@admin.register(BillingProfile)
class BillingProfileAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("organization", "time_zone", "contract_cents_per_unit_hour", "discount_percent")


@admin.register(Credit)
class CreditAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("organization", "month", "amount_cents", "reason")


@admin.register(MeteringRecord)
class MeteringRecordAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("organization", "hour", "quantity", "status", "attempts")
    list_filter = ("status",)
