from django.apps import AppConfig


class TenancyConfig(AppConfig):
    name = "controlplane.tenancy"
    label = "tenancy"
    verbose_name = "Tenancy"

    def ready(self) -> None:
        from controlplane.tenancy.api import schema  # noqa: F401  registers the OpenAPI scheme
