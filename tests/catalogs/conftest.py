"""Catalog tests: an org with a member, a compute plane with live clusters, agent reports."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from controlplane.computeplanes.models import ComputePlane
from controlplane.core.roles import Role
from tests.factories import ClusterFactory, ComputePlaneFactory


@pytest.fixture
def member(org, make_caller):
    return make_caller(org, Role.MEMBER, via="token")


@pytest.fixture
def plane(org) -> ComputePlane:
    return ComputePlaneFactory(
        organization=org, resources={"buckets": {"warehouse": "lp-wh-1", "logs": "lp-logs-1"}}
    )


@pytest.fixture
def clusters(org, plane) -> Callable[..., list[Any]]:
    def make(n: int, on: ComputePlane | None = None, **kwargs: Any) -> list[Any]:
        return [
            ClusterFactory(organization=org, compute_plane=on or plane, **kwargs) for _ in range(n)
        ]

    return make
