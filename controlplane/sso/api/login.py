"""The browser side of per-organization sign-in: ``/sso/start`` and ``/sso/callback/``.

Start takes an email address (its verified domain names the organization) or an organization
slug, and sends the browser to that organization's provider. The callback finishes the code
flow, admits the user (sso.signin.admit) and remembers in the session that it was signed in
through this organization's provider, which is what ``require_sso`` asks of a session.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import login
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_http_methods

from controlplane.sso import signin
from controlplane.sso.crypto import SecretUnreadable
from controlplane.tenancy.models import SSO_SESSION_KEY

PENDING_KEY = "lakeplane_sso_pending"


def _refuse(request: HttpRequest, message: str, status: int) -> HttpResponse:
    context: dict[str, Any] = {
        "sso_error": message,
        "oidc_enabled": settings.OIDC_ENABLED,
        "oidc_provider_name": settings.OIDC_PROVIDER_NAME,
    }
    return render(request, "registration/login.html", context, status=status)


def _redirect_uri(request: HttpRequest) -> str:
    return request.build_absolute_uri("/sso/callback/")


@require_http_methods(["GET", "POST"])
def sso_start(request: HttpRequest) -> HttpResponseBase:
    params = request.POST if request.method == "POST" else request.GET
    email = params.get("email", "").strip()
    slug = params.get("org", "").strip()
    if email:
        connection = signin.connection_for_email(email)
    elif slug:
        connection = signin.connection_for_org(slug)
    else:
        return _refuse(request, "Give your work email address or your organization.", 400)
    if connection is None:
        # The same answer for an unknown organization and one without SSO.
        return _refuse(request, "No organization signs in with single sign-on there.", 404)
    pending = request.session.get(PENDING_KEY, {})
    url = signin.begin(connection, _redirect_uri(request), pending, login_hint=email)
    request.session[PENDING_KEY] = pending
    return HttpResponseRedirect(url)


@require_GET
def sso_callback(request: HttpRequest) -> HttpResponseBase:
    pending = request.session.get(PENDING_KEY, {})
    state = request.GET.get("state", "")
    if "error" in request.GET:
        pending.pop(state, None)
        request.session[PENDING_KEY] = pending
        detail = request.GET.get("error_description") or request.GET["error"]
        return _refuse(request, f"The identity provider ended the sign-in: {detail[:200]}", 403)
    code = request.GET.get("code", "")
    if not state or not code:
        return _refuse(request, "The identity provider's answer is incomplete.", 400)
    try:
        connection, identity = signin.finish(pending, state, code, _redirect_uri(request))
        user = signin.admit(connection, identity)
    except signin.SignInRefused as refused:
        request.session[PENDING_KEY] = pending
        return _refuse(request, str(refused), 403)
    except SecretUnreadable:
        request.session[PENDING_KEY] = pending
        return _refuse(request, "Single sign-on is misconfigured; ask an owner to fix it.", 503)
    same_user = request.user.is_authenticated and request.user.pk == user.pk
    signed_in_orgs = list(request.session.get(SSO_SESSION_KEY, [])) if same_user else []
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    if connection.organization_id not in signed_in_orgs:
        signed_in_orgs.append(connection.organization_id)
    request.session[SSO_SESSION_KEY] = signed_in_orgs
    request.session[PENDING_KEY] = pending
    return HttpResponseRedirect(settings.LOGIN_REDIRECT_URL)
