from django.apps import AppConfig


class CloudAccountsConfig(AppConfig):
    name = "controlplane.cloudaccounts"
    label = "cloudaccounts"
    verbose_name = "Cloud accounts"

    def ready(self) -> None:
        from controlplane.cloudaccounts import workflows  # noqa: F401  registers the workflow
