from django.urls import path

from controlplane.sso.api import scim_views

urlpatterns = [
    path("Users", scim_views.users, name="scim-users"),
    path("Users/<str:resource_id>", scim_views.user, name="scim-user"),
    path("Groups", scim_views.groups, name="scim-groups"),
    path("Groups/<str:resource_id>", scim_views.group, name="scim-group"),
    path(
        "ServiceProviderConfig",
        scim_views.service_provider_config,
        name="scim-service-provider-config",
    ),
]
