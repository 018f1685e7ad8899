"""The org-scoped API base: the secure path is the only path.

Every endpoint under ``/api/v1/orgs/{org}/`` derives from :class:`OrgScopedViewSet`, which

* resolves ``{org}`` from the URL and the caller's role in it (a user's membership, or the
  org an API token belongs to); a caller who is not in the org gets 404, as if it did not exist;
* checks the role against a declarative map per HTTP method (``required_roles``) or per
  action (``action_roles``), answering 403 when the caller is in the org but may not act;
* scopes every queryset to that org through ``org_lookup``.

Subclasses cannot override ``get_queryset``/``get_object`` (refused when the class is
created); they narrow queries in :meth:`safely_get_queryset`. Reaching past the org filter
needs a method whose name starts with ``dangerously_``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.db.models import QuerySet
from django.http import HttpRequest
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from controlplane.core.audit import Actor, client_ip
from controlplane.core.observability import bind_organization
from controlplane.core.roles import Role, role_at_least
from controlplane.tenancy.models import SSO_SESSION_KEY, ApiToken, Membership

FORBIDDEN_OVERRIDES = ("get_queryset", "get_object", "initial")

DEFAULT_REQUIRED_ROLES: dict[str, Role] = {
    "GET": Role.VIEWER,
    "HEAD": Role.VIEWER,
    "OPTIONS": Role.VIEWER,
    "POST": Role.MEMBER,
    "PUT": Role.MEMBER,
    "PATCH": Role.MEMBER,
    "DELETE": Role.MEMBER,
}

# Resources only admins change (members, tokens' owners, cloud accounts, compute planes).
ADMIN_WRITES: dict[str, Role] = {
    **DEFAULT_REQUIRED_ROLES,
    "POST": Role.ADMIN,
    "PUT": Role.ADMIN,
    "PATCH": Role.ADMIN,
    "DELETE": Role.ADMIN,
}


class _ScopedViewSetMeta(type):
    def __new__(mcs, name: str, bases: tuple[type, ...], attrs: dict[str, Any]) -> Any:
        cls = super().__new__(mcs, name, bases, attrs)
        if attrs.get("_scoping_base", False):
            return cls
        for method in FORBIDDEN_OVERRIDES:
            if method in attrs:
                raise TypeError(
                    f"{name} overrides {method}(); org scoping is applied by OrgScopedViewSet. "
                    "Narrow the queryset in safely_get_queryset() instead."
                )
        return cls


class OrgScopedViewSet(viewsets.GenericViewSet, metaclass=_ScopedViewSetMeta):  # type: ignore[type-arg]
    _scoping_base: ClassVar[bool] = True

    lookup_value_regex = r"[a-z]+_[0-9a-z]+"
    # Path from the model to its organization, e.g. "organization" or "cluster__organization".
    org_lookup: ClassVar[str] = "organization"
    required_roles: ClassVar[dict[str, Role]] = DEFAULT_REQUIRED_ROLES
    action_roles: ClassVar[dict[str, Role]] = {}

    organization: Any
    role: Role

    # ---- the one entry point --------------------------------------------------------------
    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        self.organization, self.role = resolve_org_role(request, self.kwargs.get("org", ""))
        bind_organization(self.organization.id)
        required = self.required_role(self.action, request.method)
        if not role_at_least(self.role, required):
            raise exceptions.PermissionDenied(
                f"This needs the {required.value} role in {self.organization.slug}; "
                f"you have {self.role.value}."
            )

    @classmethod
    def required_role(cls, action: str | None, method: str | None) -> Role:
        """The least role an action needs: ``action_roles`` first, then ``required_roles``
        by HTTP method; a method neither names needs the owner."""
        return cls.action_roles.get(action or "") or cls.required_roles.get(
            method or "GET", Role.OWNER
        )

    def get_queryset(self) -> QuerySet[Any]:
        queryset = super().get_queryset().filter(**{self.org_lookup: self.organization})
        return self.safely_get_queryset(queryset)

    def safely_get_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset

    def get_object(self) -> Any:
        return super().get_object()

    def accepted(self, data: Any, operation: Any) -> Response:
        """202 for a change that runs as an operation, with a Location header to it (API.md)."""
        location = f"/api/v1/orgs/{self.organization.slug}/operations/{operation.id}"
        return Response(data, status=status.HTTP_202_ACCEPTED, headers={"Location": location})

    @property
    def actor(self) -> Actor:
        return actor_from_request(self.request)


def actor_from_request(request: HttpRequest) -> Actor:
    """Who is calling: the signed-in user, or the API token the request authenticated with."""
    user = request.user if request.user.is_authenticated else None
    auth = getattr(request, "auth", None)
    token = auth if isinstance(auth, ApiToken) else None
    return Actor(user=user, token=token, source_ip=client_ip(request))


def resolve_org_role(request: Request, slug: str) -> tuple[Any, Role]:
    """The caller's organization and role, or 404 if the caller is not in it."""
    not_found = exceptions.NotFound("No such organization.")
    token = request.auth if isinstance(request.auth, ApiToken) else None
    if token is not None:
        if token.organization.slug != slug:
            raise not_found
        return token.organization, token.effective_role
    membership = (
        Membership.objects.select_related("organization")
        .filter(organization__slug=slug, user_id=request.user.pk)
        .first()
    )
    if membership is None:
        raise not_found
    org = membership.organization
    break_glass = request.user.pk == org.sso_break_glass_owner_id and membership.role == Role.OWNER
    if org.require_sso and not break_glass:
        # The policy binds console sessions; API tokens are automation an owner issued.
        session = getattr(request, "session", None)
        signed_in = session.get(SSO_SESSION_KEY, []) if session is not None else []
        if org.pk not in signed_in:
            raise exceptions.PermissionDenied(
                f"{org.slug} requires single sign-on: sign in at /sso/start?org={org.slug}."
            )
    return org, Role(membership.role)


class OrgScopedModelViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    OrgScopedViewSet,
):
    """Convenience: CRUD routed through services by the subclass's perform_* methods."""

    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
