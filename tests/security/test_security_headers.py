"""Security headers on the API, the console, the sign-in page and the API docs; HSTS in production.

The policy allows scripts and styles from this origin only, so every page Lakeplane serves must
load them as files: the pages are checked for inline ones here, and the console's built
index.html under the real policy in Chromium (tests/e2e/test_console_browser.py fails on any
console error, a CSP violation included).
"""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from tests.factories import UserFactory
from tests.security.test_admin_surface import answers, production

ROOT = Path(__file__).resolve().parents[2]


def policy(headers: Any) -> dict[str, str]:
    directives = [d.strip() for d in headers["Content-Security-Policy"].split(";") if d.strip()]
    return {d.split(" ", 1)[0]: d.split(" ", 1)[1] if " " in d else "" for d in directives}


def assert_security_headers(headers: Any) -> None:
    csp = policy(headers)
    assert csp["script-src"] == "'self'"
    assert csp["style-src"] == "'self'"
    assert csp["frame-ancestors"] == "'none'"
    assert csp["object-src"] == "'none'"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["X-Frame-Options"] == "DENY"


class _Inline(HTMLParser):
    """Inline scripts, inline <style> blocks, style="" and on* attributes of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        if tag == "script":
            self._in_script = "src" not in names and names.get("type") != "application/json"
        if tag == "style":
            self.found.append("<style>")
        self.found += [f"{tag}[{n}]" for n in names if n == "style" or n.startswith("on")]

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.found.append(f"<script>{data.strip()[:40]}")


def inline_parts(html: str) -> list[str]:
    parser = _Inline()
    parser.feed(html)
    return parser.found


@pytest.mark.django_db
def test_api_answers_carry_the_headers(owner: Any) -> None:
    for response in (
        owner.client.get(f"/api/v1/orgs/{owner.org.slug}"),
        Client().get("/api/v1/orgs"),  # a 401 problem too
        Client().get("/healthz"),
    ):
        assert_security_headers(response)
    assert "Strict-Transport-Security" not in response  # plain HTTP outside production


@pytest.mark.django_db
def test_the_console_and_its_sign_in_page_carry_the_headers_and_nothing_inline() -> None:
    login = Client().get("/login/")
    assert login.status_code == 200
    assert_security_headers(login)
    assert inline_parts(login.content.decode()) == []

    client = Client()
    client.force_login(UserFactory())
    console = client.get("/")
    assert console.status_code == 200
    assert_security_headers(console)
    assert inline_parts(console.content.decode()) == []


def test_the_console_source_and_build_have_no_inline_script() -> None:
    pages = [ROOT / "frontend" / "index.html", settings.FRONTEND_DIST / "index.html"]
    checked = [page for page in pages if page.is_file()]
    assert checked, "frontend/index.html is missing"
    for page in checked:
        assert inline_parts(page.read_text()) == [], page


@pytest.mark.django_db
def test_the_api_docs_keep_to_the_policy() -> None:
    docs = Client().get("/api/docs/")
    assert docs.status_code == 200
    assert_security_headers(docs)
    assert inline_parts(docs.content.decode()) == []
    assert b"?script=" in docs.content  # Swagger UI's start-up script, served as a file
    script = Client().get("/api/docs/?script=")
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")


def test_production_adds_hsts_to_the_api_and_the_console(tmp_path: Path) -> None:
    out = answers(production(tmp_path, ["/api/v1/orgs", "/", "/login/"]))
    for path, answer in out.items():
        headers = answer["headers"]
        assert headers["Strict-Transport-Security"] == (
            "max-age=31536000; includeSubDomains; preload"
        ), path
        assert_security_headers(headers)
    assert out["/api/v1/orgs"]["status"] == 401
    assert out["/"]["status"] == 302  # the console sends a stranger to sign in
    assert out["/login/"]["status"] == 200
