from rest_framework.routers import SimpleRouter

from controlplane.cloudaccounts.api.views import CloudAccountViewSet

router = SimpleRouter(trailing_slash=False)
router.register("cloud-accounts", CloudAccountViewSet, basename="cloud-account")

org_urlpatterns = router.urls
