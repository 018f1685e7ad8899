from django.apps import AppConfig


class CatalogsConfig(AppConfig):
    name = "controlplane.catalogs"
    label = "catalogs"
    verbose_name = "Catalogs and metastores"

    def ready(self) -> None:
        import controlplane.catalogs.workflows  # noqa: F401  registers the metastore workflows
        from controlplane.agentapi.services import status_reported
        from controlplane.catalogs import observed_metastores
        from controlplane.catalogs.observed import on_status_reported

        # Per-cluster catalog versions arrive in the agent's status reports.
        status_reported.connect(on_status_reported, dispatch_uid="catalogs.observed")
        status_reported.connect(
            observed_metastores.on_status_reported, dispatch_uid="catalogs.observed_metastores"
        )
