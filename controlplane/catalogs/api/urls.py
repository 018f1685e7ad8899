from django.urls import path
from rest_framework.routers import SimpleRouter

from controlplane.catalogs.api.views import CatalogViewSet, ConnectorsView, MetastoreViewSet

router = SimpleRouter(trailing_slash=False)
router.register("catalogs", CatalogViewSet, basename="catalog")
router.register("metastores", MetastoreViewSet, basename="metastore")

org_urlpatterns = router.urls
urlpatterns = [path("connectors", ConnectorsView.as_view(), name="connectors")]
