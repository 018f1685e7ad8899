from django.urls import path
from rest_framework.routers import SimpleRouter

from controlplane.sso.api.views import (
    ScimTokenViewSet,
    SsoConnectionViewSet,
    SsoDomainViewSet,
    SsoGroupMappingViewSet,
)

router = SimpleRouter(trailing_slash=False)
router.register("sso/domains", SsoDomainViewSet, basename="sso-domain")
router.register("sso/group-mappings", SsoGroupMappingViewSet, basename="sso-group-mapping")
router.register("scim-tokens", ScimTokenViewSet, basename="scim-token")

org_urlpatterns = [
    path(
        "sso",
        SsoConnectionViewSet.as_view(
            {"get": "retrieve", "put": "update", "patch": "partial_update", "delete": "destroy"}
        ),
        name="sso-connection",
    ),
    *router.urls,
]
