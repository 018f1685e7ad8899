from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "controlplane.billing"
    label = "billing"
    verbose_name = "Usage and billing"

    def ready(self) -> None:
        from controlplane.agentapi.services import usage_reported
        from controlplane.billing.receivers import on_usage_reported

        # The agent API knows nothing of billing; it announces usage reports and billing keeps
        # the periods they cover (what the agent vouched for, including "nothing ran").
        usage_reported.connect(on_usage_reported, dispatch_uid="billing.coverage")
