from rest_framework.routers import SimpleRouter

from controlplane.core.api.views import AuditEventViewSet, OperationViewSet

router = SimpleRouter(trailing_slash=False)
router.register("operations", OperationViewSet, basename="operation")
router.register("audit-events", AuditEventViewSet, basename="audit-event")

org_urlpatterns = router.urls
