"""Organization roles, ordered: each role can do everything the ones below it can."""

from __future__ import annotations

from django.db import models


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"
    VIEWER = "viewer", "Viewer"


_RANK = {Role.VIEWER: 0, Role.MEMBER: 1, Role.ADMIN: 2, Role.OWNER: 3}


def role_rank(role: str) -> int:
    return _RANK[Role(role)]


def role_at_least(role: str, required: str) -> bool:
    return role_rank(role) >= role_rank(required)
