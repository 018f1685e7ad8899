from django.apps import AppConfig


class GatewaysConfig(AppConfig):
    name = "controlplane.gateways"
    label = "gateways"
    verbose_name = "Query gateways"

    def ready(self) -> None:
        from controlplane.agentapi.services import queries_reported, wake_requested
        from controlplane.gateways import ingest

        # The agent API knows nothing of gateways; it passes their reports on and this answers.
        queries_reported.connect(ingest.on_queries_reported, dispatch_uid="gateways.queries")
        wake_requested.connect(ingest.on_wake_requested, dispatch_uid="gateways.wake")
