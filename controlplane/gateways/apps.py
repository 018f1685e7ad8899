from django.apps import AppConfig


class GatewaysConfig(AppConfig):
    name = "controlplane.gateways"
    label = "gateways"
    verbose_name = "Query gateways"
