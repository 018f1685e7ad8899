from django.urls import path
from rest_framework.routers import SimpleRouter

from controlplane.tenancy.api.views import (
    MemberViewSet,
    MeView,
    OrganizationListView,
    OrganizationViewSet,
    TokenViewSet,
)

router = SimpleRouter(trailing_slash=False)
router.register("members", MemberViewSet, basename="member")
router.register("tokens", TokenViewSet, basename="token")

urlpatterns = [
    path("me", MeView.as_view(), name="me"),
    path("orgs", OrganizationListView.as_view(), name="organization-list"),
]

org_detail_urlpatterns = [
    path(
        "",
        OrganizationViewSet.as_view(
            {"get": "retrieve", "patch": "partial_update", "delete": "destroy"}
        ),
        name="organization-detail",
    ),
]

org_urlpatterns = router.urls
