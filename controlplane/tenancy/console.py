"""Serves the console's single-page app and the sign-in page."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import ensure_csrf_cookie

_MISSING_BUILD = """<!doctype html><title>Lakeplane</title>
<h1>Lakeplane console</h1>
<p>The console has not been built. Run <code>make frontend</code> (or <code>make run</code>).</p>
<p><a href="/api/docs/">API docs</a></p>"""


@login_required
@ensure_csrf_cookie
def console_index(request: HttpRequest) -> HttpResponse:
    index = settings.FRONTEND_DIST / "index.html"
    if not index.exists():
        return HttpResponse(_MISSING_BUILD)
    return HttpResponse(index.read_text(), content_type="text/html; charset=utf-8")


def login_view(request: HttpRequest) -> HttpResponse:
    return auth_views.LoginView.as_view(
        template_name="registration/login.html",
        redirect_authenticated_user=True,
        extra_context={
            "oidc_enabled": settings.OIDC_ENABLED,
            "oidc_provider_name": settings.OIDC_PROVIDER_NAME,
        },
    )(request)
