"""A lost database or broker connection is a 503 problem+json with Retry-After, never a 500
(controlplane/core/errors.py); the live version, with the connections really cut, is
tests/e2e/test_outage.py."""

from __future__ import annotations

import pytest
from django.db import OperationalError
from django.test import RequestFactory
from kombu.exceptions import OperationalError as BrokerError
from rest_framework.views import APIView

from controlplane.core.errors import handler500


@pytest.mark.parametrize(
    "error", [OperationalError("server closed the connection"), BrokerError("refused")]
)
def test_an_unreachable_dependency_in_an_api_view_is_a_503(owner, org, monkeypatch, error):
    def unreachable(self, request, *args, **kwargs):
        raise error

    monkeypatch.setattr(APIView, "initial", unreachable)
    answer = owner.client.get(f"/api/v1/orgs/{org.slug}/clusters")
    assert answer.status_code == 503
    assert answer["Content-Type"] == "application/problem+json"
    assert answer["Retry-After"] == "5"
    assert answer.json()["type"].endswith("/unavailable")


def test_an_outage_met_outside_drf_is_a_503_and_a_bug_stays_a_500():
    request = RequestFactory().get("/")
    try:
        raise OperationalError("could not connect to server")
    except OperationalError:
        answer = handler500(request)
    assert (answer.status_code, answer["Retry-After"]) == (503, "5")
    try:
        raise KeyError("a bug")
    except KeyError:
        answer = handler500(request)
    assert answer.status_code == 500
