"""Serves the console's single-page app and the sign-in page."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.views.decorators.csrf import ensure_csrf_cookie

from controlplane.core import ratelimit
from controlplane.core.audit import client_ip

_MISSING_BUILD = """<!doctype html><title>Lakeplane</title>
<h1>Lakeplane console</h1>
<p>The console has not been built. Run <code>make frontend</code> (or <code>make run</code>).</p>
<p><a href="/api/docs/">API docs</a></p>"""


def _built_index() -> Path | None:
    """The console's index.html: the fresh build in a checkout (the sandbox), else the copy
    collectstatic gathered into STATIC_ROOT (production images need not keep frontend/dist)."""
    for candidate in (settings.FRONTEND_DIST / "index.html", settings.STATIC_ROOT / "index.html"):
        if candidate.is_file():
            return candidate
    return None


@login_required
@ensure_csrf_cookie
def console_index(request: HttpRequest) -> HttpResponse:
    index = _built_index()
    if index is None:
        return HttpResponse(_MISSING_BUILD)
    return HttpResponse(index.read_text(), content_type="text/html; charset=utf-8")


def login_view(request: HttpRequest) -> HttpResponseBase:
    if request.method == "POST":
        # Every password attempt counts, by client address and by the email tried.
        email = str(request.POST.get("username", "")).strip().lower()
        try:
            ratelimit.check(ratelimit.SIGN_IN, f"ip:{client_ip(request)}", f"email:{email}")
        except ratelimit.RateLimited as limited:
            return limited.response()
    return auth_views.LoginView.as_view(
        template_name="registration/login.html",
        redirect_authenticated_user=True,
        extra_context={
            "oidc_enabled": settings.OIDC_ENABLED,
            "oidc_provider_name": settings.OIDC_PROVIDER_NAME,
        },
    )(request)
