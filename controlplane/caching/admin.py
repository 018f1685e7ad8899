from django.contrib import admin

from controlplane.caching.models import Cache


@admin.register(Cache)
class CacheAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("id", "name", "organization", "compute_plane", "medium", "workers", "status")
    list_filter = ("medium", "status")
    search_fields = ("id", "name", "organization__slug")
    # Changes go through the API (services + operations); the admin only looks.
    readonly_fields = (
        "operation",
        "desired_version",
        "observed_version",
        "observed_phase",
        "master_ready",
        "workers_ready",
        "bytes_used",
        "bytes_capacity",
        "hit_ratio",
        "observed_at",
    )
