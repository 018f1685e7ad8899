// Members & tokens, and the audit log. Creating a token shows its secret once (with copy); the
// list shows prefix, last use and expiry; revoke asks first. Admin-only writes are hidden from
// other roles (the API refuses them anyway).

import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { type FormEvent, useState } from "react";
import { useParams } from "react-router";

import {
  createToken,
  fetchAuditEvents,
  fetchMembers,
  fetchTokens,
  type IssuedToken,
  type Page,
  revokeToken,
  type Role,
  type Token,
} from "../api/client";
import { CopyButton } from "../app/CopyButton";
import { canAdminister, useRole } from "../app/me";
import { FieldError, fieldErrorId, ProblemView } from "../app/ProblemView";
import { When } from "../app/time";

const ROLES: Role[] = ["viewer", "member", "admin", "owner"];

function CreateToken({ org, onIssued }: { org: string; onIssued: (t: IssuedToken) => void }) {
  const queryClient = useQueryClient();
  const [name, setName] = useState("");
  const [role, setRole] = useState<Role>("viewer");
  const [days, setDays] = useState("90");
  const create = useMutation({
    mutationFn: () => createToken(org, { name: name.trim(), role, expires_in_days: Number(days) }),
    onSuccess: (issued) => {
      onIssued(issued);
      setName("");
      // The answer is the token (plus its secret): list it at once, without the secret.
      const { token: _secret, ...listed } = issued;
      queryClient.setQueryData<Page<Token>>(["orgs", org, "tokens"], (old) =>
        old ? { ...old, results: [listed, ...old.results] } : old,
      );
      void queryClient.invalidateQueries({ queryKey: ["orgs", org, "tokens"] });
    },
  });
  const daysProblem = /^\d+$/.test(days) && Number(days) >= 1 && Number(days) <= 90 ? null : "1 to 90 days.";
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (name.trim() && !daysProblem) create.mutate();
  };
  return (
    <form className="inline-form" onSubmit={submit} noValidate aria-label="New token">
      <label>
        Name
        <input value={name} onChange={(e) => setName(e.target.value)} aria-describedby={fieldErrorId("name")} />
      </label>
      <label>
        Role
        <select value={role} onChange={(e) => setRole(e.target.value as Role)} aria-describedby={fieldErrorId("role")}>
          {ROLES.map((r) => (
            <option key={r} value={r}>
              {r}
            </option>
          ))}
        </select>
      </label>
      <label>
        Expires in days
        <input
          type="number"
          min={1}
          max={90}
          value={days}
          onChange={(e) => setDays(e.target.value)}
          aria-invalid={daysProblem !== null || undefined}
          aria-describedby={daysProblem ? "days-hint" : fieldErrorId("expires_in_days")}
        />
      </label>
      <button type="submit" disabled={!name.trim() || daysProblem !== null || create.isPending}>
        Create token
      </button>
      {daysProblem && (
        <span className="field-error" id="days-hint">
          {daysProblem}
        </span>
      )}
      <FieldError error={create.error} field="name" />
      <FieldError error={create.error} field="role" />
      <FieldError error={create.error} field="expires_in_days" />
      {create.isError && <ProblemView error={create.error} shownFields={["name", "role", "expires_in_days"]} />}
    </form>
  );
}

function Tokens({ org, canAdmin }: { org: string; canAdmin: boolean }) {
  const queryClient = useQueryClient();
  const tokens = useQuery({ queryKey: ["orgs", org, "tokens"], queryFn: () => fetchTokens(org) });
  const [issued, setIssued] = useState<IssuedToken | null>(null);
  const [confirming, setConfirming] = useState<string | null>(null);
  const revoke = useMutation({
    mutationFn: (id: string) => revokeToken(org, id),
    onSuccess: () => {
      setConfirming(null);
      void queryClient.invalidateQueries({ queryKey: ["orgs", org, "tokens"] });
    },
  });
  return (
    <section className="panel" aria-labelledby="tokens-heading">
      <h2 id="tokens-heading">API tokens</h2>
      {canAdmin && <CreateToken org={org} onIssued={setIssued} />}
      {issued && (
        <div className="ok-banner panel" role="status">
          <p>
            Token <strong>{issued.name}</strong> created. Copy its secret now: it is not shown again.
          </p>
          <code data-testid="token-secret">{issued.token}</code> <CopyButton text={issued.token} label="Copy token" />
        </div>
      )}
      {tokens.isPending && <p className="muted">Loading tokens…</p>}
      {tokens.isError && <ProblemView error={tokens.error} />}
      {tokens.data?.results.length === 0 && <p className="muted">No API tokens yet.</p>}
      {tokens.data && tokens.data.results.length > 0 && (
        <table className="operations">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Prefix</th>
              <th scope="col">Role</th>
              <th scope="col">Last used</th>
              <th scope="col">Expires</th>
              <th scope="col">State</th>
            </tr>
          </thead>
          <tbody>
            {tokens.data.results.map((t) => (
              <tr key={t.id}>
                <td>{t.name}</td>
                <td>
                  <code>{t.prefix}…</code>
                </td>
                <td>{t.role}</td>
                <td>
                  <When iso={t.last_used_at} />
                </td>
                <td>{t.expires_at ? <When iso={t.expires_at} /> : "never"}</td>
                <td>
                  {t.revoked_at ? (
                    <span className="status status--deleted">revoked</span>
                  ) : canAdmin && confirming === t.id ? (
                    <>
                      <button type="button" className="button-danger" onClick={() => revoke.mutate(t.id)}>
                        Revoke {t.name}
                      </button>{" "}
                      <button type="button" className="button-secondary" onClick={() => setConfirming(null)}>
                        Cancel
                      </button>
                    </>
                  ) : canAdmin ? (
                    <button type="button" className="button-secondary" onClick={() => setConfirming(t.id)}>
                      Revoke…
                    </button>
                  ) : (
                    <span className="status status--ready">active</span>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {revoke.isError && <ProblemView error={revoke.error} />}
    </section>
  );
}

export function MembersPage() {
  const { org = "" } = useParams();
  const canAdmin = canAdminister(useRole(org));
  const members = useQuery({ queryKey: ["orgs", org, "members"], queryFn: () => fetchMembers(org) });
  return (
    <>
      <h1>Members & tokens</h1>
      <section className="panel" aria-labelledby="members-heading">
        <h2 id="members-heading">Members</h2>
        {members.isPending && <p className="muted">Loading members…</p>}
        {members.isError && <ProblemView error={members.error} />}
        {members.data && (
          <table className="operations">
            <thead>
              <tr>
                <th scope="col">Email</th>
                <th scope="col">Name</th>
                <th scope="col">Role</th>
                <th scope="col">Joined</th>
              </tr>
            </thead>
            <tbody>
              {members.data.results.map((m) => (
                <tr key={m.id}>
                  <td>{m.email}</td>
                  <td>{m.name}</td>
                  <td>{m.role}</td>
                  <td>
                    <When iso={m.joined_at} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      <Tokens org={org} canAdmin={canAdmin} />
    </>
  );
}

export function AuditLogPage() {
  const { org = "" } = useParams();
  const [filter, setFilter] = useState("");
  const events = useQuery({ queryKey: ["orgs", org, "audit-events"], queryFn: () => fetchAuditEvents(org) });
  const needle = filter.trim().toLowerCase();
  const shown = (events.data?.results ?? []).filter(
    (e) =>
      !needle ||
      e.action.toLowerCase().includes(needle) ||
      String(e.actor.label ?? "").toLowerCase().includes(needle) ||
      e.target.id.toLowerCase().includes(needle),
  );
  return (
    <>
      <h1>Audit log</h1>
      <section className="panel">
        <label>
          Filter by action, actor or target
          <input value={filter} onChange={(e) => setFilter(e.target.value)} placeholder="cluster.resize" />
        </label>
        {events.isPending && <p className="muted">Loading the audit log…</p>}
        {events.isError && <ProblemView error={events.error} />}
        {events.data && shown.length === 0 && <p className="muted">No events{needle ? " match the filter" : ""}.</p>}
        {shown.length > 0 && (
          <table className="operations">
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Actor</th>
                <th scope="col">Action</th>
                <th scope="col">Target</th>
              </tr>
            </thead>
            <tbody>
              {shown.map((e) => (
                <tr key={e.id}>
                  <td>
                    <When iso={e.created_at} />
                  </td>
                  <td>{String(e.actor.label ?? "")}</td>
                  <td>
                    <code>{e.action}</code>
                  </td>
                  <td>
                    {e.target.type} <code>{e.target.id}</code>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {events.data?.more && <p className="muted small">Showing the latest 100 events.</p>}
      </section>
    </>
  );
}
