"""Django's admin, for Lakeplane's own staff: off in production unless enabled, and then only
for staff who signed in over single sign-on (docs/security.md "The admin").

Routing decides whether ``/admin/`` exists at all (``LAKEPLANE_ADMIN_ENABLED``); this site
decides who gets in. With ``LAKEPLANE_ADMIN_REQUIRE_SSO`` (always on in production) a staff
user's password session is not enough: the session must have been made by the OpenID Connect
backend, and the admin's own password form is replaced by a redirect to the IdP.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.contrib.auth import BACKEND_SESSION_KEY
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

OIDC_BACKEND = "controlplane.tenancy.oidc.LakeplaneOIDCBackend"


def signed_in_over_sso(request: HttpRequest) -> bool:
    return bool(request.user.is_authenticated) and (
        request.session.get(BACKEND_SESSION_KEY) == OIDC_BACKEND
    )


class LakeplaneAdminSite(admin.AdminSite):
    site_header = "Lakeplane staff admin"

    def has_permission(self, request: HttpRequest) -> bool:
        if not super().has_permission(request):
            return False
        return not settings.LAKEPLANE_ADMIN_REQUIRE_SSO or signed_in_over_sso(request)

    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        if not settings.LAKEPLANE_ADMIN_REQUIRE_SSO:
            return super().login(request, extra_context)
        if signed_in_over_sso(request):
            # Signed in over SSO, but not staff: asking the IdP again would loop.
            raise PermissionDenied("the admin is for Lakeplane staff")
        if not settings.OIDC_ENABLED:
            return HttpResponse("The admin needs single sign-on.", status=403)
        next_url = request.GET.get("next") or reverse("admin:index")
        query = urlencode({"next": next_url})
        return HttpResponseRedirect(f"{reverse('oidc_authentication_init')}?{query}")


class LakeplaneAdminConfig(AdminConfig):
    default_site = "controlplane.core.adminsite.LakeplaneAdminSite"
