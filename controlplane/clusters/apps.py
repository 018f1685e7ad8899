from django.apps import AppConfig


class ClustersConfig(AppConfig):
    name = "controlplane.clusters"
    label = "clusters"
    verbose_name = "Clusters"

    def ready(self) -> None:
        import controlplane.clusters.workflows  # noqa: F401  registers the workflows
        from controlplane.agentapi.services import status_reported
        from controlplane.clusters.observed import on_status_reported

        # The agent API knows nothing of clusters; it announces reports and this app listens.
        status_reported.connect(on_status_reported, dispatch_uid="clusters.observed")
        from controlplane.agentapi.services import scaling_reported
        from controlplane.clusters.decisions import on_scaling_reported
        from controlplane.clusters.services import on_plane_repaired
        from controlplane.computeplanes.services import plane_repaired

        scaling_reported.connect(on_scaling_reported, dispatch_uid="clusters.decisions")
        # A repaired plane gives its failed clusters their retry.
        plane_repaired.connect(on_plane_repaired, dispatch_uid="clusters.repaired")
