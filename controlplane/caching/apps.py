from django.apps import AppConfig


class CachingConfig(AppConfig):
    name = "controlplane.caching"
    label = "caching"
    verbose_name = "Alluxio caches"

    def ready(self) -> None:
        import controlplane.caching.workflows  # noqa: F401  registers the workflows
        from controlplane.agentapi.services import status_reported
        from controlplane.caching.observed import on_status_reported

        # The agent API knows nothing of caches; it announces reports and this app listens.
        status_reported.connect(on_status_reported, dispatch_uid="caching.observed")
