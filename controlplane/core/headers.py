"""The Content-Security-Policy on every answer (docs/security.md "Security headers").

Django's SecurityMiddleware sends the other headers (X-Content-Type-Options, Referrer-Policy,
Cross-Origin-Opener-Policy and, in production, Strict-Transport-Security) and
XFrameOptionsMiddleware sends X-Frame-Options; Django 5.2 has no CSP of its own, so this adds
``LAKEPLANE_CONTENT_SECURITY_POLICY`` where a view has not set one.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response
        self.policy = str(settings.LAKEPLANE_CONTENT_SECURITY_POLICY)

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if self.policy and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = self.policy
        return response
