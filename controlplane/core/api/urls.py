from django.urls import URLPattern, URLResolver
from rest_framework.routers import SimpleRouter

from controlplane.core.api.views import AuditEventViewSet, OperationViewSet, lean_operations_list

router = SimpleRouter(trailing_slash=False)
router.register("operations", OperationViewSet, basename="operation")
router.register("audit-events", AuditEventViewSet, basename="audit-event")


def _route(pattern: URLPattern | URLResolver) -> URLPattern | URLResolver:
    # The operations list keeps its route, name and viewset; its usual request is served by
    # the lean entry point (controlplane/core/api/views.py).
    if not isinstance(pattern, URLPattern) or pattern.name != "operation-list":
        return pattern
    return URLPattern(
        pattern.pattern, lean_operations_list(pattern.callback), pattern.default_args, pattern.name
    )


org_urlpatterns = [_route(p) for p in router.urls]
