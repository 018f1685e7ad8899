import { useCallback, useEffect, useState } from "react";

import { fetchMe, fetchOrganization, signOut, type Me, type Organization } from "../api/client";
import { ApiError, errorMessage } from "../api/problem";
import { chooseOrg, loadRememberedOrg, rememberOrg } from "./currentOrg";
import { OrgSwitcher } from "./OrgSwitcher";
import { RecentOperations } from "./RecentOperations";

type MeState = { kind: "loading" } | { kind: "error"; message: string } | { kind: "ready"; me: Me };

function goToLogin(): void {
  const next = window.location.pathname + window.location.search;
  window.location.assign(`/login/?next=${encodeURIComponent(next)}`);
}

/** The signed-in frame: who you are, which org you are in, and the org's pages. */
export function Shell() {
  const [meState, setMeState] = useState<MeState>({ kind: "loading" });
  const [org, setOrg] = useState<string | null>(null);
  const [orgDetail, setOrgDetail] = useState<Organization | null>(null);
  const [orgError, setOrgError] = useState<string | null>(null);
  const [signOutError, setSignOutError] = useState<string | null>(null);

  useEffect(() => {
    fetchMe().then(
      (me) => {
        setMeState({ kind: "ready", me });
        setOrg(chooseOrg(me.memberships, loadRememberedOrg()));
      },
      (error: unknown) => {
        // The session ended (expired, signed out in another tab): back to the sign-in page.
        if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
          goToLogin();
          return;
        }
        setMeState({ kind: "error", message: errorMessage(error) });
      },
    );
  }, []);

  useEffect(() => {
    if (!org) return;
    let live = true;
    setOrgDetail(null);
    setOrgError(null);
    fetchOrganization(org).then(
      (detail) => live && setOrgDetail(detail),
      (error: unknown) => live && setOrgError(errorMessage(error)),
    );
    return () => {
      live = false;
    };
  }, [org]);

  const switchOrg = useCallback((next: string) => {
    rememberOrg(next);
    setOrg(next);
  }, []);

  const onSignOut = useCallback(() => {
    setSignOutError(null);
    signOut().then(
      () => window.location.assign("/login/"),
      (error: unknown) => setSignOutError(errorMessage(error)),
    );
  }, []);

  if (meState.kind === "loading") {
    return (
      <p className="page-status" aria-live="polite">
        Loading Lakeplane…
      </p>
    );
  }
  if (meState.kind === "error") {
    return (
      <div className="page-status">
        <h1>Lakeplane is not available</h1>
        <p className="error" role="alert">
          {meState.message}
        </p>
      </div>
    );
  }

  const { me } = meState;
  return (
    <div className="shell">
      <header className="topbar">
        <span className="brand">Lakeplane</span>
        <OrgSwitcher memberships={me.memberships} current={org} onChange={switchOrg} />
        <nav className="topbar__nav" aria-label="Account">
          <a href="/api/docs/">API docs</a>
          <span className="user-email" data-testid="user-email">
            {me.user.email}
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
      <main className="content">
        {org === null ? (
          <section className="panel">
            <h1>Welcome to Lakeplane</h1>
            <p>You are not a member of any organization yet. Ask an admin of your organization to invite you.</p>
          </section>
        ) : (
          <>
            <section className="org-heading" aria-live="polite">
              {orgError ? (
                <p className="error" role="alert">
                  {orgError}
                </p>
              ) : (
                <>
                  <h1 data-testid="org-name">{orgDetail?.name ?? org}</h1>
                  {orgDetail && (
                    <p className="muted">
                      <code>{orgDetail.slug}</code> · your role: <strong data-testid="org-role">{orgDetail.role}</strong>
                    </p>
                  )}
                </>
              )}
            </section>
            <section className="panel placeholder">
              <p>Clusters, catalogs and caches arrive here.</p>
            </section>
            <RecentOperations org={org} />
          </>
        )}
      </main>
    </div>
  );
}
