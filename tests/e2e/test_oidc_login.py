"""Single sign-on end to end: a real OpenID provider, Lakeplane on a live server, real HTTP.

The provider is panva's certified ``oidc-provider`` (tests/e2e/oidc_provider/provider.mjs),
run with node on a loopback port. A ``requests.Session`` plays the browser: it starts at the
sign-in page, follows every redirect by hand (so each hop can be checked), fills in the IdP's
sign-in and consent forms, and ends back at Lakeplane with a session cookie — or without one.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from io import StringIO
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
from django.core.management import CommandError, call_command
from pytest_django.fixtures import Settings
from pytest_django.live_server_helper import LiveServer

from controlplane.core.roles import Role
from controlplane.tenancy.models import Organization, User
from controlplane.tenancy.oidc import discover
from tests.factories import MembershipFactory, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PROVIDER_DIR = Path(__file__).resolve().parent / "oidc_provider"
CLIENT_ID = "lakeplane-e2e"
# The test directory's one password (provider.mjs reads it from the same variable).
PASSWORD = "correct horse battery staple"
# Bounds on waiting for things outside this process, so a broken setup fails instead of hanging.
NPM_CI_TIMEOUT_S = 300
PROVIDER_START_TIMEOUT_S = 30
MAX_REDIRECTS = 20


@dataclass(frozen=True)
class Provider:
    issuer: str
    client_secret: str
    log: Path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _install_provider_deps() -> None:
    """``npm ci`` once, if node_modules is missing; a lock keeps xdist workers from racing."""
    with open(PROVIDER_DIR / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
            return
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("npm is needed to install the test OpenID provider (Node 20+)")
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=PROVIDER_DIR,
            check=True,
            timeout=NPM_CI_TIMEOUT_S,
        )


def _wait_until_ready(process: subprocess.Popen[bytes], issuer: str, log: Path) -> None:
    deadline = time.monotonic() + PROVIDER_START_TIMEOUT_S
    discovery = f"{issuer}/.well-known/openid-configuration"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the OpenID provider exited ({process.returncode}):\n{log.read_text()}")
        try:
            if requests.get(discovery, timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    pytest.fail(f"the OpenID provider did not answer at {discovery}:\n{log.read_text()}")


@pytest.fixture(scope="session")
def oidc_provider(
    live_server: LiveServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Provider]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node (20+) is needed to run the test OpenID provider")
    _install_provider_deps()
    port = _free_port()
    issuer = f"http://127.0.0.1:{port}"
    client_secret = secrets.token_urlsafe(32)
    log = tmp_path_factory.mktemp("oidc-provider") / "provider.log"
    env = {
        **os.environ,
        "OIDC_PROVIDER_PORT": str(port),
        "OIDC_PROVIDER_ISSUER": issuer,
        "OIDC_PROVIDER_CLIENT_ID": CLIENT_ID,
        "OIDC_PROVIDER_CLIENT_SECRET": client_secret,
        "OIDC_PROVIDER_REDIRECT_URIS": f"{live_server.url}/oidc/callback/",
        "OIDC_PROVIDER_PASSWORD": PASSWORD,
    }
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [node, "provider.mjs"], cwd=PROVIDER_DIR, env=env, stdout=out, stderr=out
        )
    try:
        _wait_until_ready(process, issuer, log)
        assert f"listening on {issuer}" in log.read_text()
        yield Provider(issuer=issuer, client_secret=client_secret, log=log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def sso(settings: Settings, oidc_provider: Provider) -> Provider:
    """Point Lakeplane's OIDC settings at the provider, read from its discovery document."""
    for name, value in discover(oidc_provider.issuer).items():
        setattr(settings, name, value)
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    settings.OIDC_RP_CLIENT_SECRET = oidc_provider.client_secret
    settings.OIDC_RP_SIGN_ALGO = "RS256"
    settings.OIDC_USE_PKCE = True
    settings.OIDC_PKCE_CODE_CHALLENGE_METHOD = "S256"
    settings.OIDC_ENABLED = True
    settings.OIDC_PROVIDER_NAME = "Test IdP"
    return oidc_provider


# --- a small browser -----------------------------------------------------------------------


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)
    inputs: set[str] = field(default_factory=set)


class _PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(action=a.get("action", ""), method=a.get("method", "get")))
        elif tag == "input" and self.forms and a.get("name"):
            self.forms[-1].inputs.add(a["name"])
            self.forms[-1].fields[a["name"]] = a.get("value", "")
        elif tag == "a" and a.get("href"):
            self.links.append(a["href"])


def parse_page(html: str) -> _PageParser:
    parser = _PageParser()
    parser.feed(html)
    return parser


class Browser:
    """A cookie jar that follows redirects one hop at a time and remembers every URL."""

    def __init__(self) -> None:
        self.http = requests.Session()
        self.visited: list[str] = []

    def _follow(
        self, response: requests.Response, stop: Callable[[str], bool]
    ) -> requests.Response:
        for _ in range(MAX_REDIRECTS):
            if not response.is_redirect:
                return response
            url = urljoin(response.url, response.headers["Location"])
            self.visited.append(url)
            if stop(url):
                return response
            response = self.http.get(url, allow_redirects=False, timeout=30)
        raise AssertionError(f"more than {MAX_REDIRECTS} redirects: {self.visited}")

    def get(self, url: str, stop: Callable[[str], bool] = lambda _: False) -> requests.Response:
        self.visited.append(url)
        return self._follow(self.http.get(url, allow_redirects=False, timeout=30), stop)

    def submit(
        self,
        page: requests.Response,
        form: Form,
        values: dict[str, str] | None = None,
        stop: Callable[[str], bool] = lambda _: False,
    ) -> requests.Response:
        assert form.method.lower() == "post", form
        url = urljoin(page.url, form.action)
        self.visited.append(url)
        response = self.http.post(
            url, data={**form.fields, **(values or {})}, allow_redirects=False, timeout=30
        )
        return self._follow(response, stop)


def on_lakeplane(live_server: LiveServer) -> Callable[[str], bool]:
    return lambda url: url.startswith(live_server.url)


def start_sign_in(browser: Browser, live_server: LiveServer) -> requests.Response:
    """Open the sign-in page and click "Sign in with Test IdP"; return the IdP's page."""
    login_page = browser.get(f"{live_server.url}/login/")
    assert login_page.status_code == 200
    assert "Sign in with Test IdP" in login_page.text
    sso_links = [href for href in parse_page(login_page.text).links if "/oidc/" in href]
    assert sso_links == ["/oidc/authenticate/"]
    return browser.get(urljoin(login_page.url, sso_links[0]))


def complete_at_idp(
    browser: Browser,
    page: requests.Response,
    email: str,
    password: str = PASSWORD,
    stop: Callable[[str], bool] = lambda _: False,
) -> requests.Response:
    """Fill in whatever the IdP asks (sign-in, then consent) until it sends us away."""
    issuer_origin = "{0.scheme}://{0.netloc}".format(urlsplit(page.url))
    for _ in range(4):
        if not page.url.startswith(issuer_origin) or page.is_redirect:
            return page
        assert page.status_code == 200, page.text
        forms = parse_page(page.text).forms
        sign_in = [f for f in forms if "password" in f.inputs]
        if sign_in:
            page = browser.submit(
                page, sign_in[0], {"email": email, "password": password}, stop=stop
            )
            if "Unknown email or wrong password" in page.text:
                return page
            continue
        allow = [f for f in forms if f.action.endswith("/confirm")]
        assert allow, f"no sign-in or consent form on {page.url}:\n{page.text}"
        page = browser.submit(page, allow[0], stop=stop)
    raise AssertionError(f"the IdP kept asking: {browser.visited}")


def sign_in(browser: Browser, live_server: LiveServer, email: str) -> requests.Response:
    return complete_at_idp(browser, start_sign_in(browser, live_server), email)


def me(browser: Browser, live_server: LiveServer) -> requests.Response:
    return browser.http.get(f"{live_server.url}/api/v1/me", timeout=30)


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


# --- tests ---------------------------------------------------------------------------------


def test_sign_in_with_authorization_code_and_pkce(live_server: LiveServer, sso: Provider) -> None:
    browser = Browser()
    landing = sign_in(browser, live_server, "alice@example.com")

    authorize = [u for u in browser.visited if u.startswith(f"{sso.issuer}/auth?")]
    assert len(authorize) == 1
    request = query_of(authorize[0])
    assert request["response_type"] == "code"
    assert request["client_id"] == CLIENT_ID
    assert request["redirect_uri"] == f"{live_server.url}/oidc/callback/"
    assert set(request["scope"].split()) == {"openid", "email", "profile"}
    assert request["code_challenge_method"] == "S256"
    assert len(request["code_challenge"]) == 43  # base64url of a SHA-256 digest
    assert request["state"]
    assert request["nonce"]

    callbacks = [u for u in browser.visited if u.startswith(f"{live_server.url}/oidc/callback/")]
    assert len(callbacks) == 1
    answer = query_of(callbacks[0])
    assert answer["code"]
    assert answer["state"] == request["state"]
    assert answer["iss"] == sso.issuer

    # Signed in, the browser lands on the console.
    assert landing.status_code == 200
    assert landing.url == f"{live_server.url}/"
    response = me(browser, live_server)
    assert response.status_code == 200
    body = response.json()
    assert body["user"]["email"] == "alice@example.com"
    assert body["user"]["name"] == "Alice Analyst"
    # A new user belongs to no organization yet, and /me says so rather than failing.
    assert body["memberships"] == []
    assert User.objects.filter(email__iexact="alice@example.com").count() == 1


def test_signing_in_again_finds_the_same_user(live_server: LiveServer, sso: Provider) -> None:
    first, second = Browser(), Browser()
    sign_in(first, live_server, "alice@example.com")
    sign_in(second, live_server, "alice@example.com")

    first_me, second_me = me(first, live_server).json(), me(second, live_server).json()
    assert first_me["user"]["id"] == second_me["user"]["id"]
    assert User.objects.filter(email__iexact="alice@example.com").count() == 1


def test_unverified_email_gets_no_session(live_server: LiveServer, sso: Provider) -> None:
    browser = Browser()
    landing = sign_in(browser, live_server, "mallory@example.com")

    assert any(u.startswith(f"{live_server.url}/oidc/callback/?code=") for u in browser.visited)
    assert landing.url.startswith(f"{live_server.url}/login/")
    assert me(browser, live_server).status_code == 401
    assert not User.objects.filter(email__iexact="mallory@example.com").exists()


@pytest.mark.parametrize(
    ("idp_email", "local_email"),
    [
        # The IdP writes the address in mixed case; Lakeplane stored it lower-cased.
        ("Bob.Builder@Example.COM", "bob.builder@example.com"),
        # An older account stored in mixed case; the IdP sends it lower-cased.
        ("carol@example.com", "Carol@Example.COM"),
    ],
)
def test_existing_user_is_matched_whatever_the_case(
    live_server: LiveServer, sso: Provider, org: Organization, idp_email: str, local_email: str
) -> None:
    local = UserFactory(email=local_email, name="")
    MembershipFactory(organization=org, user=local, role=Role.ADMIN)

    browser = Browser()
    sign_in(browser, live_server, idp_email)

    response = me(browser, live_server)
    assert response.status_code == 200
    body = response.json()
    assert body["user"]["id"] == local.pk
    assert body["memberships"] == [{"org": org.slug, "role": "admin"}]
    assert User.objects.filter(email__iexact=local_email).count() == 1
    local.refresh_from_db()
    assert local.name  # the IdP's display name filled in the empty one


def test_deactivated_user_is_refused_not_duplicated(live_server: LiveServer, sso: Provider) -> None:
    UserFactory(email="dave@example.com", is_active=False)

    browser = Browser()
    landing = sign_in(browser, live_server, "dave@example.com")

    assert landing.url.startswith(f"{live_server.url}/login/")
    assert me(browser, live_server).status_code == 401
    assert User.objects.filter(email__iexact="dave@example.com").count() == 1


def test_wrong_password_stays_at_the_idp(live_server: LiveServer, sso: Provider) -> None:
    browser = Browser()
    page = complete_at_idp(
        browser, start_sign_in(browser, live_server), "alice@example.com", password="guess"
    )

    assert page.url.startswith(sso.issuer)
    assert "Unknown email or wrong password" in page.text
    assert not any(u.startswith(f"{live_server.url}/oidc/callback/") for u in browser.visited)
    assert me(browser, live_server).status_code == 401


def test_code_is_useless_without_its_pkce_verifier(live_server: LiveServer, sso: Provider) -> None:
    browser = Browser()
    # Sign in at the IdP, but stop before the browser delivers the code to Lakeplane.
    held = complete_at_idp(
        browser,
        start_sign_in(browser, live_server),
        "alice@example.com",
        stop=on_lakeplane(live_server),
    )
    first = query_of(urljoin(held.url, held.headers["Location"]))
    assert first["code"]

    # A second sign-in in the same session has its own state and code verifier.
    second_start = browser.get(f"{live_server.url}/oidc/authenticate/", stop=lambda u: True)
    second = query_of(second_start.headers["Location"])
    assert second["state"] != first["state"]

    # The first code delivered under the second state: Lakeplane sends the second verifier,
    # the IdP refuses the exchange, and nobody is signed in.
    landing = browser.get(
        f"{live_server.url}/oidc/callback/?code={first['code']}&state={second['state']}"
    )
    assert landing.url.startswith(f"{live_server.url}/login/")
    assert me(browser, live_server).status_code == 401
    assert not User.objects.filter(email__iexact="alice@example.com").exists()

    # The same code under its own state (so with its own verifier) is accepted: the refusal
    # above was the verifier's doing and nothing else's.
    landing = browser.get(
        f"{live_server.url}/oidc/callback/?code={first['code']}&state={first['state']}"
    )
    assert landing.url == f"{live_server.url}/"
    assert me(browser, live_server).json()["user"]["email"] == "alice@example.com"


def test_discovery_prints_the_provider_settings(sso: Provider) -> None:
    out = StringIO()
    call_command("oidc_discover", sso.issuer, stdout=out)

    lines = dict(line.split("=", 1) for line in out.getvalue().splitlines())
    assert lines == {
        "OIDC_OP_ISSUER": sso.issuer,
        "OIDC_OP_AUTHORIZATION_ENDPOINT": f"{sso.issuer}/auth",
        "OIDC_OP_TOKEN_ENDPOINT": f"{sso.issuer}/token",
        "OIDC_OP_USER_ENDPOINT": f"{sso.issuer}/me",
        "OIDC_OP_JWKS_ENDPOINT": f"{sso.issuer}/jwks",
    }
    with pytest.raises(CommandError, match="could not read"):
        call_command("oidc_discover", f"{sso.issuer}/nowhere", stdout=StringIO())
