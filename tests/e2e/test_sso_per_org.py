"""Per-organization single sign-on end to end: two real OpenID providers at once, one per
organization, Lakeplane on a live server, the browser played by ``requests``.

Each provider is panva's ``oidc-provider`` (tests/e2e/oidc_provider/provider.mjs) started with
its own port, issuer, client and directory file; the directory is read again at every sign-in,
so a test moves people between groups by rewriting it. Domain verification goes over real DNS
to a server the test runs (tests/sso/conftest.py).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from pytest_django.live_server_helper import LiveServer

from controlplane.core.audit import Actor
from controlplane.core.models import AuditEvent
from controlplane.core.roles import Role
from controlplane.tenancy import services
from controlplane.tenancy.models import ApiToken, Membership, Organization, User
from tests.e2e.test_oidc_login import (
    PROVIDER_DIR,
    Browser,
    _free_port,
    _install_provider_deps,
    _wait_until_ready,
    complete_at_idp,
    me,
    parse_page,
    query_of,
)
from tests.sso.servers import DnsZone

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@dataclass
class LocalProvider:
    issuer: str
    client_id: str
    client_secret: str
    accounts_file: Path
    log: Path

    def set_accounts(self, accounts: list[dict[str, Any]]) -> None:
        tmp = self.accounts_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(accounts))
        tmp.replace(self.accounts_file)  # the provider never reads half a file

    def set_groups(self, email: str, groups: list[str]) -> None:
        accounts = json.loads(self.accounts_file.read_text())
        for account in accounts:
            if account["email"] == email:
                account["groups"] = groups
        self.set_accounts(accounts)


def _account(name: str, email: str, groups: list[str]) -> dict[str, Any]:
    return {"sub": f"u-{name}", "email": email, "verified": True, "name": name, "groups": groups}


@pytest.fixture
def start_provider(
    live_server: LiveServer, tmp_path: Path
) -> Iterator[Callable[[str, str, list[dict[str, Any]]], LocalProvider]]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node (20+) is needed to run the test OpenID providers")
    _install_provider_deps()
    processes: list[subprocess.Popen[bytes]] = []

    def start(name: str, auth_method: str, accounts: list[dict[str, Any]]) -> LocalProvider:
        port = _free_port()
        issuer = f"http://127.0.0.1:{port}"
        provider = LocalProvider(
            issuer=issuer,
            client_id=f"lakeplane-{name}",
            client_secret=secrets.token_urlsafe(32),
            accounts_file=tmp_path / f"{name}-accounts.json",
            log=tmp_path / f"{name}.log",
        )
        provider.set_accounts(accounts)
        config = tmp_path / f"{name}-config.json"
        config.write_text(
            json.dumps(
                {
                    "port": port,
                    "issuer": issuer,
                    "accounts": str(provider.accounts_file),
                    "clients": [
                        {
                            "client_id": provider.client_id,
                            "client_secret": provider.client_secret,
                            "redirect_uris": [f"{live_server.url}/sso/callback/"],
                            "token_endpoint_auth_method": auth_method,
                        }
                    ],
                }
            )
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("OIDC_PROVIDER_")}
        with open(provider.log, "wb") as out:
            process = subprocess.Popen(
                [node, "provider.mjs", "--config", str(config)],
                cwd=PROVIDER_DIR,
                env=env,
                stdout=out,
                stderr=out,
            )
        processes.append(process)
        _wait_until_ready(process, issuer, provider.log)
        return provider

    yield start
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Tenant:
    org: Organization
    owner: User
    api: requests.Session
    provider: LocalProvider
    domain: str

    def url(self, live_server: LiveServer, rest: str) -> str:
        return f"{live_server.url}/api/v1/orgs/{self.org.slug}{rest}"


def _tenant(
    live_server: LiveServer,
    zone: DnsZone,
    provider: LocalProvider,
    slug: str,
    domain: str,
    mappings: dict[str, str],
    auth_method: str,
) -> Tenant:
    """An organization whose owner sets up SSO through the API, over HTTP."""
    org, owner, issued = services.bootstrap(org_slug=slug, email=f"owner@{slug}-admins.test")
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {issued.secret}"
    base = f"{live_server.url}/api/v1/orgs/{slug}"
    connected = api.put(
        f"{base}/sso",
        json={
            "issuer": provider.issuer,
            "client_id": provider.client_id,
            "client_secret": provider.client_secret,
            "token_endpoint_auth_method": auth_method,
        },
        timeout=30,
    )
    assert connected.status_code == 201, connected.text
    assert connected.json()["endpoints"]["jwks_uri"] == f"{provider.issuer}/jwks"
    assert provider.client_secret not in connected.text
    claimed = api.post(f"{base}/sso/domains", json={"domain": domain}, timeout=30).json()
    record = claimed["verification"]
    zone.txt[record["name"]] = [record["value"]]
    verified = api.post(f"{base}/sso/domains/{claimed['id']}/verify", timeout=30)
    assert verified.json()["status"] == "verified", verified.text
    for group, role in mappings.items():
        made = api.post(
            f"{base}/sso/group-mappings", json={"group": group, "role": role}, timeout=30
        )
        assert made.status_code == 201, made.text
    return Tenant(org=org, owner=owner, api=api, provider=provider, domain=domain)


@pytest.fixture
def tenants(
    live_server: LiveServer,
    dns_zone: DnsZone,
    start_provider: Any,
) -> tuple[Tenant, Tenant]:
    acme_idp = start_provider(
        "acme",
        "client_secret_basic",
        [
            _account("alice", "alice@acme.test", ["lp-admins", "everyone"]),
            _account("bob", "bob@acme.test", ["lp-admins"]),
            # An acme identity with a globex address: acme's provider must not be believed.
            _account("eve", "eve@globex.test", ["lp-admins"]),
            _account("nina", "nina@acme.test", ["everyone"]),
        ],
    )
    globex_idp = start_provider(
        "globex",
        "client_secret_post",
        [_account("carol", "carol@globex.test", ["analysts"])],
    )
    acme = _tenant(
        live_server,
        dns_zone,
        acme_idp,
        "acme",
        "acme.test",
        {"lp-admins": "admin", "lp-viewers": "viewer"},
        "client_secret_basic",
    )
    globex = _tenant(
        live_server,
        dns_zone,
        globex_idp,
        "globex",
        "globex.test",
        {"analysts": "member"},
        "client_secret_post",
    )
    return acme, globex


def sso_sign_in(
    browser: Browser, live_server: LiveServer, email: str, start: str | None = None
) -> requests.Response:
    first = browser.get(start or f"{live_server.url}/sso/start?email={email}")
    return complete_at_idp(browser, first, email)


def memberships(browser: Browser, live_server: LiveServer) -> list[dict[str, str]]:
    response = me(browser, live_server)
    assert response.status_code == 200, response.text
    result: list[dict[str, str]] = response.json()["memberships"]
    return result


# --- tests ---------------------------------------------------------------------------------


def test_each_address_signs_in_at_its_own_organizations_provider(
    live_server: LiveServer, tenants: tuple[Tenant, Tenant]
) -> None:
    acme, globex = tenants

    alice = Browser()
    landing = sso_sign_in(alice, live_server, "alice@acme.test")
    assert landing.url == f"{live_server.url}/"
    authorize = [u for u in alice.visited if "/auth?" in u]
    assert len(authorize) == 1
    assert authorize[0].startswith(f"{acme.provider.issuer}/auth?")
    request = query_of(authorize[0])
    assert request["client_id"] == acme.provider.client_id
    assert request["redirect_uri"] == f"{live_server.url}/sso/callback/"
    assert request["code_challenge_method"] == "S256"
    assert len(request["code_challenge"]) == 43
    assert request["login_hint"] == "alice@acme.test"
    assert "groups" in request["scope"].split()
    assert not any(u.startswith(globex.provider.issuer) for u in alice.visited)
    assert memberships(alice, live_server) == [{"org": "acme", "role": "admin"}]

    carol = Browser()
    sso_sign_in(carol, live_server, "carol@globex.test")
    assert any(u.startswith(f"{globex.provider.issuer}/auth?") for u in carol.visited)
    assert not any(u.startswith(acme.provider.issuer) for u in carol.visited)
    assert memberships(carol, live_server) == [{"org": "globex", "role": "member"}]

    # The org slug works as well as an address.
    by_slug = Browser()
    sso_sign_in(by_slug, live_server, "alice@acme.test", f"{live_server.url}/sso/start?org=acme")
    assert memberships(by_slug, live_server) == [{"org": "acme", "role": "admin"}]

    signed_in = AuditEvent.objects.filter(action="sso.signed_in", organization=acme.org)
    assert {e.data["role_after"] for e in signed_in} == {"admin"}
    assert signed_in.first().data["groups"] == ["lp-admins"]  # type: ignore[union-attr]


def test_role_follows_the_groups_and_losing_them_ends_the_membership(
    live_server: LiveServer, tenants: tuple[Tenant, Tenant]
) -> None:
    acme, _ = tenants
    sso_sign_in(Browser(), live_server, "bob@acme.test")
    bob = User.objects.get(email="bob@acme.test")
    assert Membership.objects.get(organization=acme.org, user=bob).role == Role.ADMIN
    token = services.create_token(
        actor=Actor(user=bob),
        organization=acme.org,
        created_by=bob,
        name="bob's automation",
        role=Role.ADMIN,
        acting_role=Role.ADMIN,
        expires_in_days=30,
    ).token

    # Moved to the viewers group at the IdP: the next sign-in makes him a viewer and caps
    # his admin token.
    acme.provider.set_groups("bob@acme.test", ["lp-viewers"])
    browser = Browser()
    sso_sign_in(browser, live_server, "bob@acme.test")
    assert memberships(browser, live_server) == [{"org": "acme", "role": "viewer"}]
    token.refresh_from_db()
    assert token.role == Role.VIEWER
    assert token.revoked_at is None

    # Out of every mapped group: refused, the membership goes, the token is revoked.
    acme.provider.set_groups("bob@acme.test", ["everyone"])
    browser = Browser()
    refused = sso_sign_in(browser, live_server, "bob@acme.test")
    assert refused.status_code == 403
    assert "not in a group that gives access" in refused.text
    assert me(browser, live_server).status_code == 401
    assert not Membership.objects.filter(organization=acme.org, user=bob).exists()
    token.refresh_from_db()
    assert token.revoked_at is not None
    removed = AuditEvent.objects.get(action="member.removed", organization=acme.org)
    assert removed.actor_label == "bob@acme.test"
    refusal = AuditEvent.objects.get(action="sso.sign_in_refused", organization=acme.org)
    assert refusal.data["role_before"] == "viewer"
    assert refusal.data["role_after"] is None

    # Nobody in no mapped group gets in to begin with.
    nina = Browser()
    assert sso_sign_in(nina, live_server, "nina@acme.test").status_code == 403
    assert not Membership.objects.filter(user__email="nina@acme.test").exists()


def test_a_provider_cannot_vouch_for_another_organizations_domain(
    live_server: LiveServer, tenants: tuple[Tenant, Tenant]
) -> None:
    acme, _globex = tenants
    browser = Browser()
    refused = sso_sign_in(
        browser, live_server, "eve@globex.test", f"{live_server.url}/sso/start?org=acme"
    )
    assert any(u.startswith(acme.provider.issuer) for u in browser.visited)
    assert refused.status_code == 403
    assert "cannot sign in addresses at globex.test" in refused.text
    assert me(browser, live_server).status_code == 401
    assert not User.objects.filter(email="eve@globex.test").exists()


def test_unknown_domain_and_tampered_callbacks_sign_nobody_in(
    live_server: LiveServer, tenants: tuple[Tenant, Tenant]
) -> None:
    browser = Browser()
    unknown = browser.get(f"{live_server.url}/sso/start?email=zed@nowhere.test")
    assert unknown.status_code == 404
    assert "No organization signs in with single sign-on there" in unknown.text

    # A code delivered with a state this browser never started.
    held = browser.get(f"{live_server.url}/sso/start?email=alice@acme.test")
    answer = complete_at_idp(browser, held, "alice@acme.test", stop=lambda u: "/sso/callback/" in u)
    callback = query_of(answer.headers["Location"])
    forged = browser.get(
        f"{live_server.url}/sso/callback/?code={callback['code']}&state=forged-state"
    )
    assert forged.status_code == 403
    assert me(browser, live_server).status_code == 401
    # The same code under its own state still works once, then the state is spent.
    ok = browser.get(answer.headers["Location"])
    assert ok.url == f"{live_server.url}/"
    assert memberships(browser, live_server) == [{"org": "acme", "role": "admin"}]
    replay = Browser()
    replay.http.cookies.update(browser.http.cookies)
    assert replay.get(answer.headers["Location"]).status_code == 403


def _password_sign_in(live_server: LiveServer, email: str, password: str) -> Browser:
    browser = Browser()
    page = browser.get(f"{live_server.url}/login/")
    form = next(f for f in parse_page(page.text).forms if "password" in f.inputs)
    landing = browser.submit(page, form, {"username": email, "password": password})
    assert landing.url == f"{live_server.url}/", landing.text
    return browser


def test_required_sso_leaves_only_the_break_glass_owner_a_password(
    live_server: LiveServer, tenants: tuple[Tenant, Tenant]
) -> None:
    acme, _ = tenants
    password = secrets.token_urlsafe(16)
    alice = User.objects.create_user(email="alice@acme.test", password=password)
    Membership.objects.create(organization=acme.org, user=alice, role=Role.ADMIN)
    acme.owner.set_password(password)
    acme.owner.save()
    policy = acme.api.patch(
        acme.url(live_server, "/sso"),
        json={"require_sso": True, "break_glass_owner": acme.owner.pk},
        timeout=30,
    )
    assert policy.status_code == 200, policy.text
    members = acme.url(live_server, "/members")

    # Her only organization requires SSO: the password form refuses her outright.
    refused_form = Browser()
    page = refused_form.get(f"{live_server.url}/login/")
    form = next(f for f in parse_page(page.text).forms if "password" in f.inputs)
    answer = refused_form.submit(page, form, {"username": "alice@acme.test", "password": password})
    assert "requires single sign-on" in answer.text
    assert me(refused_form, live_server).status_code == 401

    # With a second organization the password opens that one, and acme still says no.
    services.bootstrap(org_slug="side-project", email="alice@acme.test")
    by_password = _password_sign_in(live_server, "alice@acme.test", password)
    refused = by_password.http.get(members, timeout=30)
    assert refused.status_code == 403
    assert "requires single sign-on" in refused.json()["detail"]

    sso_sign_in(by_password, live_server, "alice@acme.test")
    assert by_password.http.get(members, timeout=30).status_code == 200

    break_glass = _password_sign_in(live_server, acme.owner.email, password)
    assert break_glass.http.get(members, timeout=30).status_code == 200
    # Automation keeps working: the owner's API token.
    assert acme.api.get(members, timeout=30).status_code == 200
    assert ApiToken.objects.filter(organization=acme.org, revoked_at__isnull=True).exists()


def test_scim_groups_count_at_sign_in_and_scim_deactivation_refuses_it(
    live_server: LiveServer, tenants: tuple[Tenant, Tenant]
) -> None:
    from tests.sso.scim_client import ScimClient, replace

    acme, _ = tenants
    issued = acme.api.post(acme.url(live_server, "/scim-tokens"), json={"name": "idp"}, timeout=30)
    scim = ScimClient(issued.json()["base_url"], issued.json()["token"])
    # Nina's IdP groups map to nothing; the group the IdP pushed by SCIM does.
    nina = scim.create_user("nina@acme.test")
    scim.create_group("lp-admins", [nina["id"]])

    browser = Browser()
    sso_sign_in(browser, live_server, "nina@acme.test")
    assert memberships(browser, live_server) == [{"org": "acme", "role": "admin"}]

    scim.patch_user(nina["id"], [replace("active", False)])
    assert memberships(browser, live_server) == []
    again = Browser()
    refused = sso_sign_in(again, live_server, "nina@acme.test")
    assert refused.status_code == 403
    assert "deactivated" in refused.text
