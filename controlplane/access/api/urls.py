from rest_framework.routers import SimpleRouter

from controlplane.access.api.views import RuleSetViewSet

router = SimpleRouter(trailing_slash=False)
router.register("access-rule-sets", RuleSetViewSet, basename="access-rule-set")

org_urlpatterns = router.urls
