from django.apps import AppConfig


class ComputePlanesConfig(AppConfig):
    name = "controlplane.computeplanes"
    label = "computeplanes"
    verbose_name = "Compute planes"

    def ready(self) -> None:
        from controlplane.computeplanes import workflows  # noqa: F401  registers the workflows
