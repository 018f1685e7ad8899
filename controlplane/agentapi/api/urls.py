"""Mounted at ``/api/agent/v1/`` (API.md "Agent API")."""

from django.urls import path

from controlplane.agentapi.api import views

urlpatterns = [
    path("register", views.RegisterView.as_view(), name="agent-register"),
    path("desired-state", views.DesiredStateView.as_view(), name="agent-desired-state"),
    path("heartbeat", views.heartbeat, name="agent-heartbeat"),
    path("status", views.status_report, name="agent-status"),
    path("usage", views.UsageView.as_view(), name="agent-usage"),
    path("scaling", views.ScalingView.as_view(), name="agent-scaling"),
    path("queries", views.QueriesView.as_view(), name="agent-queries"),
    path("wake", views.WakeView.as_view(), name="agent-wake"),
]
