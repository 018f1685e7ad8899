"""The console's deep links: every path the console routes (/orgs/{org}/clusters/{id}, …) is the
same index.html, so a reload or a pasted link opens the same view; the API, static files and the
admin keep their own answers."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.test import Client

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

INDEX = '<!doctype html><div id="root"></div><script src="/static/assets/index-test.js"></script>'
DEEP_PATHS = [
    "/",
    "/orgs/acme",
    "/orgs/acme/clusters",
    "/orgs/acme/clusters/cl_01hx",
    "/orgs/acme/compute-planes/cp_01hx",
    "/orgs/acme/audit-events",
    "/orgs/acme/no-such-section",  # the console's own 404 page, not Django's
]


@pytest.fixture
def built_console(settings, tmp_path: Path) -> Path:
    (tmp_path / "index.html").write_text(INDEX)
    settings.FRONTEND_DIST = tmp_path
    return tmp_path


@pytest.mark.parametrize("path", DEEP_PATHS)
def test_a_signed_in_reload_of_a_deep_link_serves_the_console(
    client: Client, built_console: Path, path: str
) -> None:
    client.force_login(UserFactory())
    response = client.get(path)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert response.content.decode() == INDEX
    # The console's writes need the CSRF cookie the page sets.
    assert "csrftoken" in response.cookies


def test_an_anonymous_deep_link_signs_in_first_and_comes_back(
    client: Client, built_console: Path
) -> None:
    response = client.get("/orgs/acme/clusters/cl_01hx")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/orgs/acme/clusters/cl_01hx"


def test_api_paths_are_not_swallowed_by_the_console(client: Client, built_console: Path) -> None:
    client.force_login(UserFactory())
    response = client.get("/api/v1/orgs/acme/no-such-thing")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/problem+json")
