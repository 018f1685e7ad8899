from rest_framework.routers import SimpleRouter

from controlplane.computeplanes.api.views import ComputePlaneViewSet

router = SimpleRouter(trailing_slash=False)
router.register("compute-planes", ComputePlaneViewSet, basename="compute-plane")

org_urlpatterns = router.urls
