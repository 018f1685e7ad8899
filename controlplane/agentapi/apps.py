from django.apps import AppConfig


class AgentApiConfig(AppConfig):
    name = "controlplane.agentapi"
    label = "agentapi"
    verbose_name = "Agent API"
