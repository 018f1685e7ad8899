"""URL map: the REST API under /api/v1, the agent API, health probes, auth, and the console."""

from django.conf import settings
from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from controlplane.access.api.urls import org_urlpatterns as access_org_urls
from controlplane.billing.api.urls import org_urlpatterns as billing_org_urls
from controlplane.billing.api.urls import urlpatterns as billing_urls
from controlplane.caching.api.urls import org_urlpatterns as cache_org_urls
from controlplane.catalogs.api.urls import org_urlpatterns as catalog_org_urls
from controlplane.catalogs.api.urls import urlpatterns as catalog_urls
from controlplane.cloudaccounts.api.urls import org_urlpatterns as cloudaccount_org_urls
from controlplane.clusters.api.urls import org_urlpatterns as cluster_org_urls
from controlplane.computeplanes.api.urls import org_urlpatterns as computeplane_org_urls
from controlplane.core.health import healthz, readyz
from controlplane.core.metrics import metrics
from controlplane.gateways.api.urls import org_urlpatterns as gateway_org_urls
from controlplane.sso.api.urls import org_urlpatterns as sso_org_urls
from controlplane.tenancy.api.urls import org_detail_urlpatterns
from controlplane.tenancy.api.urls import org_urlpatterns as tenancy_org_urls
from controlplane.tenancy.api.urls import urlpatterns as tenancy_urls

# Every app adds its org-scoped routes here; the generic isolation test walks the URLconf.
org_scoped_urls: list[URLPattern | URLResolver] = [
    *tenancy_org_urls,
    *cloudaccount_org_urls,
    *computeplane_org_urls,
    *cluster_org_urls,
    *cache_org_urls,
    *catalog_org_urls,
    *access_org_urls,
    *billing_org_urls,
    *gateway_org_urls,
    *sso_org_urls,
]

api_v1: list[URLPattern | URLResolver] = [
    *tenancy_urls,
    *catalog_urls,
    *billing_urls,
    path("orgs/<str:org>", include(org_detail_urlpatterns)),
    path("orgs/<str:org>/", include(org_scoped_urls)),
]

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics, name="metrics"),
    path("api/v1/", include(api_v1)),
    path("api/agent/v1/", include("controlplane.agentapi.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The public API's schema and its browser are public (docs/security.md); the split view
    # serves Swagger UI's start-up script as a file and the template has no inline style, so
    # the page keeps to the CSP.
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(
            url_name="schema", template_name="lakeplane/swagger_ui.html"
        ),
        name="api-docs",
    ),
    # Off in production unless enabled (core/adminsite.py); a 404 like any unknown path.
    *([path("admin/", admin.site.urls)] if settings.LAKEPLANE_ADMIN_ENABLED else []),
    path("oidc/", include("mozilla_django_oidc.urls")),
    path("sso/", include("controlplane.sso.urls")),
    path("scim/v2/", include("controlplane.sso.scim_urls")),
    path("", include("controlplane.tenancy.urls")),
]

handler400 = "controlplane.core.errors.handler400"
handler403 = "controlplane.core.errors.handler403"
handler404 = "controlplane.core.errors.handler404"
handler500 = "controlplane.core.errors.handler500"
