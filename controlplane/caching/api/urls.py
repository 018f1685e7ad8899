from rest_framework.routers import SimpleRouter

from controlplane.caching.api.views import CacheViewSet

router = SimpleRouter(trailing_slash=False)
router.register("caches", CacheViewSet, basename="cache")

org_urlpatterns = router.urls
