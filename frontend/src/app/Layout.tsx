// The signed-in frame: top bar (brand, org switcher, account), left navigation, breadcrumbs and
// the page. The org comes from the URL (/orgs/{org}/…), so a reload or a shared link shows the
// same view; the switcher navigates and remembers the choice for the next visit to /.

import { useCallback, useEffect, useState } from "react";
import { Link, NavLink, Navigate, Outlet, useLocation, useMatch, useMatches, useNavigate, useParams } from "react-router";

import { signOut } from "../api/client";
import { ApiError, errorMessage } from "../api/problem";
import { chooseOrg, loadRememberedOrg, rememberOrg } from "../shell/currentOrg";
import { OrgSwitcher } from "../shell/OrgSwitcher";
import { useMe } from "./me";
import { NotFound } from "./NotFound";
import { orgPath, SECTIONS, switchedOrgPath } from "./sections";

export interface Crumb {
  crumb: (params: Record<string, string | undefined>) => string;
}

function goToLogin(): void {
  const next = window.location.pathname + window.location.search;
  window.location.assign(`/login/?next=${encodeURIComponent(next)}`);
}

/** The root route: who is signed in, the top bar, and the page under it. */
export function AppFrame() {
  const me = useMe();
  const org = useMatch("/orgs/:org/*")?.params.org;
  const navigate = useNavigate();
  const location = useLocation();
  const [signOutError, setSignOutError] = useState<string | null>(null);
  const sessionEnded = me.error instanceof ApiError && (me.error.status === 401 || me.error.status === 403);

  useEffect(() => {
    // The session ended (expired, signed out in another tab): back to the sign-in page.
    if (sessionEnded) goToLogin();
  }, [sessionEnded]);

  const switchOrg = useCallback(
    (next: string) => {
      rememberOrg(next);
      navigate(switchedOrgPath(location.pathname, next));
    },
    [navigate, location.pathname],
  );

  const onSignOut = useCallback(() => {
    setSignOutError(null);
    signOut().then(
      () => window.location.assign("/login/"),
      (error: unknown) => setSignOutError(errorMessage(error)),
    );
  }, []);

  if (me.isPending || sessionEnded) {
    return (
      <p className="page-status" aria-live="polite">
        Loading Lakeplane…
      </p>
    );
  }
  if (me.isError) {
    return (
      <div className="page-status">
        <h1>Lakeplane is not available</h1>
        <p className="error" role="alert">
          {errorMessage(me.error)}
        </p>
      </div>
    );
  }
  const { user, memberships } = me.data;
  const current = org && memberships.some((m) => m.org === org) ? org : null;
  return (
    <div className="shell">
      <header className="topbar">
        <Link className="brand" to="/">
          Lakeplane
        </Link>
        <OrgSwitcher memberships={memberships} current={current} onChange={switchOrg} />
        <nav className="topbar__nav" aria-label="Account">
          <a href="/api/docs/">API docs</a>
          <span className="user-email" data-testid="user-email">
            {user.email}
          </span>
          <button type="button" className="button-link" onClick={onSignOut}>
            Sign out
          </button>
        </nav>
      </header>
      {signOutError && (
        <p className="error banner" role="alert">
          Could not sign out: {signOutError}
        </p>
      )}
      <Outlet />
    </div>
  );
}

/** "/": the remembered org's overview (or the first membership's), or a welcome without one. */
export function Home() {
  const me = useMe();
  if (!me.data) return null;
  const org = chooseOrg(me.data.memberships, loadRememberedOrg());
  if (org) return <Navigate to={orgPath(org)} replace />;
  return (
    <main className="content">
      <section className="panel">
        <h1>Welcome to Lakeplane</h1>
        <p>You are not a member of any organization yet. Ask an admin of your organization to invite you.</p>
      </section>
    </main>
  );
}

function Breadcrumbs() {
  const matches = useMatches();
  const crumbs = matches
    .filter((m) => (m.handle as Crumb | undefined)?.crumb)
    .map((m) => ({ to: m.pathname, label: (m.handle as Crumb).crumb(m.params) }));
  // One crumb is the heading itself; a trail starts at two.
  if (crumbs.length < 2) return null;
  return (
    <nav aria-label="Breadcrumb" className="breadcrumbs">
      <ol>
        {crumbs.map((c, i) => (
          <li key={c.to}>
            {i === crumbs.length - 1 ? <span aria-current="page">{c.label}</span> : <Link to={c.to}>{c.label}</Link>}
          </li>
        ))}
      </ol>
    </nav>
  );
}

/** /orgs/{org}/…: the navigation for a member of that org, or not-found for anyone else. */
export function OrgLayout() {
  const { org = "" } = useParams();
  const me = useMe();
  const member = me.data?.memberships.some((m) => m.org === org) ?? false;
  useEffect(() => {
    if (member) rememberOrg(org);
  }, [member, org]);
  if (!member) {
    return (
      <main className="content">
        <NotFound what="organization" />
      </main>
    );
  }
  return (
    <div className="org-frame">
      <nav className="sidenav" aria-label="Sections">
        <ul>
          {SECTIONS.map((s) => (
            <li key={s.path}>
              <NavLink to={orgPath(org, s.path)} end={s.path === ""}>
                {s.title}
              </NavLink>
            </li>
          ))}
        </ul>
      </nav>
      <main className="content">
        <Breadcrumbs />
        <Outlet />
      </main>
    </div>
  );
}
