from rest_framework.routers import SimpleRouter

from controlplane.clusters.api.views import ClusterViewSet

router = SimpleRouter(trailing_slash=False)
router.register("clusters", ClusterViewSet, basename="cluster")

org_urlpatterns = router.urls
