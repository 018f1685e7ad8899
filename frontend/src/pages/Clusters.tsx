import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { type FormEvent, useCallback, useState } from "react";
import { Link, useParams } from "react-router";

import {
  type Cluster,
  clusterAction,
  type ClusterAction,
  deleteCluster,
  fetchCluster,
  fetchClusters,
  resizeCluster,
} from "../api/client";
import { CopyButton } from "../app/CopyButton";
import { canOperate, useRole } from "../app/me";
import { FieldError, fieldErrorId, ProblemView } from "../app/ProblemView";
import { orgPath } from "../app/sections";
import { StatusBadge } from "../app/StatusBadge";
import { When } from "../app/time";
import { connectionStrings } from "./connection";
import { OperationProgress } from "./OperationProgress";

const clustersKey = (org: string) => ["orgs", org, "clusters"];

export function ClustersPage() {
  const { org = "" } = useParams();
  const clusters = useQuery({ queryKey: clustersKey(org), queryFn: () => fetchClusters(org) });
  return (
    <>
      <h1>Clusters</h1>
      <section className="panel">
        {clusters.isPending && <p className="muted">Loading clusters…</p>}
        {clusters.isError && <ProblemView error={clusters.error} />}
        {clusters.data?.results.length === 0 && (
          <p className="muted">No clusters yet. A cluster is a Trino or Presto engine on one of your compute planes.</p>
        )}
        {clusters.data && clusters.data.results.length > 0 && (
          <table className="operations">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Status</th>
                <th scope="col">Engine</th>
                <th scope="col">Workers (ready/desired)</th>
                <th scope="col">Compute plane</th>
                <th scope="col">Created</th>
              </tr>
            </thead>
            <tbody>
              {clusters.data.results.map((c) => (
                <tr key={c.id}>
                  <td>
                    <Link to={orgPath(org, "clusters", c.id)}>{c.name}</Link>
                  </td>
                  <td>
                    <StatusBadge status={c.status} />
                  </td>
                  <td>
                    {c.engine} {c.version}
                  </td>
                  <td>
                    {c.workers.ready}/{c.workers.desired}
                  </td>
                  <td>
                    <Link to={orgPath(org, "compute-planes", c.compute_plane)}>
                      <code>{c.compute_plane}</code>
                    </Link>
                  </td>
                  <td>
                    <When iso={c.created_at} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {clusters.data?.more && <p className="muted small">Showing the first 100 clusters.</p>}
      </section>
    </>
  );
}

/** What the workers field says while typing, before the API is asked. */
export function resizeProblem(value: string, cluster: Cluster): string | null {
  if (value.trim() === "") return "Enter a number of workers.";
  if (!/^\d+$/.test(value.trim())) return "Workers is a whole number.";
  const n = Number(value);
  const { min_count: min, max_count: max } = cluster.workers;
  if (n < min || n > max) return `Between ${min} and ${max} (the cluster's bounds).`;
  return null;
}

function ResizeForm({ org, cluster, onChanged }: { org: string; cluster: Cluster; onChanged: (c: Cluster) => void }) {
  const [value, setValue] = useState(String(cluster.workers.desired));
  const resize = useMutation({ mutationFn: (workers: number) => resizeCluster(org, cluster.id, workers), onSuccess: onChanged });
  const local = resizeProblem(value, cluster);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (local === null) resize.mutate(Number(value));
  };
  const describedBy = local ? "resize-hint" : fieldErrorId("workers");
  return (
    <form className="inline-form" onSubmit={submit} noValidate>
      <label>
        Workers
        <input
          type="number"
          inputMode="numeric"
          min={cluster.workers.min_count}
          max={cluster.workers.max_count}
          value={value}
          onChange={(e) => setValue(e.target.value)}
          aria-invalid={local !== null || undefined}
          aria-describedby={describedBy}
        />
      </label>
      <button type="submit" disabled={local !== null || resize.isPending || cluster.status !== "running"}>
        Resize
      </button>
      {local && (
        <span className="field-error" id="resize-hint">
          {local}
        </span>
      )}
      <FieldError error={resize.error} field="workers" />
      {resize.isError && <ProblemView error={resize.error} shownFields={["workers"]} />}
      {resize.isSuccess && !resize.data.operation && (
        <span className="muted small" role="status">
          Already {resize.data.workers.desired} workers: nothing to do.
        </span>
      )}
    </form>
  );
}

function DeleteCluster({ org, cluster }: { org: string; cluster: Cluster }) {
  const [open, setOpen] = useState(false);
  const [typed, setTyped] = useState("");
  const queryClient = useQueryClient();
  const remove = useMutation({
    mutationFn: () => deleteCluster(org, cluster.id),
    onSuccess: (updated) => {
      queryClient.setQueryData([...clustersKey(org), cluster.id], updated);
      void queryClient.invalidateQueries({ queryKey: clustersKey(org) });
      setOpen(false);
    },
  });
  if (!open) {
    return (
      <button type="button" className="button-danger" onClick={() => setOpen(true)}>
        Delete…
      </button>
    );
  }
  return (
    <form
      className="confirm"
      aria-label="Confirm deletion"
      onSubmit={(e) => {
        e.preventDefault();
        remove.mutate();
      }}
    >
      <p>
        Deleting <strong>{cluster.name}</strong> removes its node groups; running queries fail. Type the cluster's name
        to confirm.
      </p>
      <label>
        Cluster name
        <input value={typed} onChange={(e) => setTyped(e.target.value)} autoComplete="off" />
      </label>
      <button type="submit" className="button-danger" disabled={typed !== cluster.name || remove.isPending}>
        Delete {cluster.name}
      </button>
      <button type="button" className="button-secondary" onClick={() => setOpen(false)}>
        Cancel
      </button>
      {remove.isError && <ProblemView error={remove.error} />}
    </form>
  );
}

const ACTIONS: { action: ClusterAction; label: string; when: readonly string[] }[] = [
  { action: "start", label: "Start", when: ["stopped"] },
  { action: "stop", label: "Stop", when: ["running", "failed"] },
  { action: "restart", label: "Restart", when: ["running"] },
];

export function ClusterPage() {
  const { org = "", id = "" } = useParams();
  const queryClient = useQueryClient();
  const canWrite = canOperate(useRole(org));
  const key = [...clustersKey(org), id];
  const cluster = useQuery({ queryKey: key, queryFn: () => fetchCluster(org, id) });
  // A write answers with the cluster (and its new operation): show it at once.
  const changed = (updated: Cluster) => {
    queryClient.setQueryData(key, updated);
    void queryClient.invalidateQueries({ queryKey: clustersKey(org), exact: true });
  };
  const refresh = useCallback(() => void queryClient.invalidateQueries({ queryKey: clustersKey(org) }), [queryClient, org]);
  const act = useMutation({ mutationFn: (action: ClusterAction) => clusterAction(org, id, action), onSuccess: changed });

  if (cluster.isPending) return <p className="muted">Loading the cluster…</p>;
  if (cluster.isError) {
    return (
      <>
        <h1>Cluster {id}</h1>
        <ProblemView error={cluster.error} />
      </>
    );
  }
  const c = cluster.data;
  const connection = c.endpoint ? connectionStrings(c.engine, c.endpoint) : null;
  const deleted = c.status === "deleted" || c.status === "deleting";
  return (
    <>
      <h1>
        {c.name} <StatusBadge status={c.status} />
      </h1>
      {canWrite && !deleted && (
        <section className="panel actions" aria-label="Actions">
          {ACTIONS.filter((a) => a.when.includes(c.status)).map((a) => (
            <button key={a.action} type="button" onClick={() => act.mutate(a.action)} disabled={act.isPending}>
              {a.label}
            </button>
          ))}
          <DeleteCluster org={org} cluster={c} />
          {act.isError && <ProblemView error={act.error} />}
        </section>
      )}
      {c.operation && <OperationProgress org={org} operationId={c.operation.id} canRetry={canWrite} onFinished={refresh} />}
      <section className="panel" aria-labelledby="workers-heading">
        <h2 id="workers-heading">Workers</h2>
        <p>
          <strong data-testid="workers-ready">
            {c.workers.ready}/{c.workers.desired}
          </strong>{" "}
          ready · bounds {c.workers.min_count}–{c.workers.max_count} · {c.workers.instance_type}
          {c.workers.spot && " (spot)"}
        </p>
        {canWrite && c.status === "running" && <ResizeForm key={c.workers.desired} org={org} cluster={c} onChanged={changed} />}
      </section>
      <section className="panel" aria-labelledby="connect-heading">
        <h2 id="connect-heading">Connect</h2>
        {connection ? (
          <dl className="details">
            <dt>{c.engine} CLI</dt>
            <dd>
              <code data-testid="connect-cli">{connection.cli}</code> <CopyButton text={connection.cli} label="Copy CLI command" />
            </dd>
            <dt>JDBC</dt>
            <dd>
              <code>{connection.jdbc}</code> <CopyButton text={connection.jdbc} label="Copy JDBC URL" />
            </dd>
          </dl>
        ) : (
          <p className="muted">The connection details appear while the cluster is running.</p>
        )}
      </section>
      <section className="panel" aria-labelledby="cluster-details">
        <h2 id="cluster-details">Details</h2>
        <dl className="details">
          <dt>ID</dt>
          <dd>
            <code>{c.id}</code>
          </dd>
          <dt>Engine</dt>
          <dd>
            {c.engine} {c.version}
          </dd>
          <dt>Compute plane</dt>
          <dd>
            <Link to={orgPath(org, "compute-planes", c.compute_plane)}>
              <code>{c.compute_plane}</code>
            </Link>
          </dd>
          <dt>Catalogs</dt>
          <dd>{c.catalogs.length ? c.catalogs.join(", ") : <span className="muted">none attached</span>}</dd>
          <dt>Cache</dt>
          <dd>{c.cache ?? <span className="muted">none</span>}</dd>
          <dt>Auto-suspend</dt>
          <dd>{c.auto_suspend_minutes ? `after ${c.auto_suspend_minutes} idle minutes` : "off"}</dd>
          <dt>Created</dt>
          <dd>
            <When iso={c.created_at} />
          </dd>
        </dl>
      </section>
    </>
  );
}
