from django.urls import path
from rest_framework.routers import SimpleRouter

from controlplane.billing.api.views import BillingViewSet, price_book

router = SimpleRouter(trailing_slash=False)
router.register("", BillingViewSet, basename="billing")

org_urlpatterns = router.urls
urlpatterns = [path("price-book", price_book, name="price-book")]
