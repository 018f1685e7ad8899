from django.contrib import admin

from controlplane.catalogs.models import Catalog, CatalogAttachment, Metastore


@admin.register(Metastore)
class MetastoreAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("id", "name", "organization", "compute_plane", "kind", "status", "created_at")
    list_filter = ("kind", "status")
    search_fields = ("id", "name", "organization__slug")
    readonly_fields = ("resources", "operation", "observed_phase", "schema_ready", "observed_at")


class AttachmentInline(admin.TabularInline):  # type: ignore[type-arg]
    model = CatalogAttachment
    extra = 0
    fields = ("cluster", "live_version", "status", "message", "observed_at")
    readonly_fields = fields


@admin.register(Catalog)
class CatalogAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("id", "name", "organization", "connector", "version", "updated_at")
    list_filter = ("connector",)
    search_fields = ("id", "name", "organization__slug")
    inlines = [AttachmentInline]
