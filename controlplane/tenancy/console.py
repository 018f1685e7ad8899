"""Serves the console's single-page app and the sign-in page."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.views.decorators.csrf import ensure_csrf_cookie

from controlplane.core import ratelimit
from controlplane.core.audit import client_ip
from controlplane.tenancy.models import Membership, User

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


SSO_REQUIRED_MESSAGE = (
    "Your organization requires single sign-on: continue with single sign-on below."
)


def _sso_binds(membership: Membership) -> bool:
    """Whether the organization requires SSO of this member (its break-glass owner excepted,
    while they are an owner)."""
    org = membership.organization
    break_glass = org.sso_break_glass_owner_id == membership.user_id and membership.role == "owner"
    return org.require_sso and not break_glass


class SignInForm(AuthenticationForm):
    """The password form, which refuses someone every one of whose organizations requires
    single sign-on (unless they are that organization's break-glass owner). A person with
    another organization may still sign in; the API then refuses the SSO-only organizations
    to this session (tenancy.viewsets.resolve_org_role)."""

    def confirm_login_allowed(self, user: User) -> None:
        super().confirm_login_allowed(user)
        memberships = list(Membership.objects.filter(user=user).select_related("organization"))
        if memberships and all(_sso_binds(m) for m in memberships):
            raise ValidationError(SSO_REQUIRED_MESSAGE, code="sso_required")


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
        authentication_form=SignInForm,
        redirect_authenticated_user=True,
        extra_context={
            "oidc_enabled": settings.OIDC_ENABLED,
            "oidc_provider_name": settings.OIDC_PROVIDER_NAME,
        },
    )(request)
