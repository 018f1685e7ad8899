"""OpenID Connect login (mozilla-django-oidc): users are matched or created by verified email."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from controlplane.tenancy.models import User


class LakeplaneOIDCBackend(OIDCAuthenticationBackend):  # type: ignore[misc]
    def verify_claims(self, claims: dict[str, Any]) -> bool:
        # An unverified address could claim someone else's account; refuse it.
        return bool(claims.get("email")) and claims.get("email_verified") is True

    def filter_users_by_claims(self, claims: dict[str, Any]) -> QuerySet[User]:
        email = str(claims.get("email", "")).strip().lower()
        if not email:
            return User.objects.none()
        return User.objects.filter(email=email, is_active=True)

    def create_user(self, claims: dict[str, Any]) -> User:
        return User.objects.create_user(
            email=str(claims["email"]).strip().lower(), name=str(claims.get("name", ""))[:200]
        )

    def update_user(self, user: User, claims: dict[str, Any]) -> User:
        name = str(claims.get("name", ""))[:200]
        if name and name != user.name:
            user.name = name
            user.save(update_fields=["name"])
        return user
