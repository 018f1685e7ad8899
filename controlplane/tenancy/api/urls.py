from django.urls import URLPattern, URLResolver, path
from rest_framework.routers import SimpleRouter

from controlplane.tenancy.api.operations import (
    AuditEventViewSet,
    OperationViewSet,
    lean_operations_list,
)
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
router.register("operations", OperationViewSet, basename="operation")
router.register("audit-events", AuditEventViewSet, basename="audit-event")

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


def _route(pattern: URLPattern | URLResolver) -> URLPattern | URLResolver:
    # The operations list keeps its route, name and viewset; its usual request is served by
    # the lean entry point (controlplane/tenancy/api/operations.py).
    if not isinstance(pattern, URLPattern) or pattern.name != "operation-list":
        return pattern
    return URLPattern(
        pattern.pattern, lean_operations_list(pattern.callback), pattern.default_args, pattern.name
    )


org_urlpatterns = [_route(p) for p in router.urls]
