from django.urls import path

from controlplane.gateways.api import views

PLANE = "compute-planes/<str:cp_id>/gateway"
gateway = views.GatewayViewSet.as_view
groups = views.RoutingGroupViewSet.as_view
rules = views.RoutingRuleViewSet.as_view

org_urlpatterns = [
    path(PLANE, gateway({"get": "retrieve", "patch": "partial_update"}), name="gateway-detail"),
    path(f"{PLANE}/route", gateway({"post": "route"}), name="gateway-route"),
    path(
        f"{PLANE}/routing-groups",
        groups({"get": "list", "post": "create"}),
        name="routing-group-list",
    ),
    path(
        f"{PLANE}/routing-groups/<str:pk>",
        groups({"get": "retrieve", "patch": "partial_update", "delete": "destroy"}),
        name="routing-group-detail",
    ),
    path(f"{PLANE}/rules", rules({"get": "list", "post": "create"}), name="routing-rule-list"),
    path(
        f"{PLANE}/rules/<str:pk>",
        rules({"get": "retrieve", "patch": "partial_update", "delete": "destroy"}),
        name="routing-rule-detail",
    ),
    path("queries", views.QueryRecordViewSet.as_view({"get": "list"}), name="query-list"),
]
