// Catalogs: the list, and a catalog's page with its properties, secret ARNs, and per cluster the
// propagation status (pending, live at a version, failed with the engine's message); members and
// up attach it to a cluster or detach it (the cluster's catalog list, PATCHed).

import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link, useParams } from "react-router";

import { type Catalog, fetchCatalog, fetchCatalogs, fetchClusters, setClusterCatalogs } from "../api/client";
import { canOperate, useRole } from "../app/me";
import { ProblemView } from "../app/ProblemView";
import { orgPath } from "../app/sections";
import { StatusBadge } from "../app/StatusBadge";
import { When } from "../app/time";

const catalogsKey = (org: string) => ["orgs", org, "catalogs"];

function propagationSummary(catalog: Catalog): string {
  if (catalog.propagation.length === 0) return "not attached";
  const live = catalog.propagation.filter((p) => p.status === "live" && p.version === catalog.version).length;
  return `live on ${live} of ${catalog.propagation.length} cluster(s)`;
}

export function CatalogsPage() {
  const { org = "" } = useParams();
  const catalogs = useQuery({ queryKey: catalogsKey(org), queryFn: () => fetchCatalogs(org) });
  return (
    <>
      <h1>Catalogs</h1>
      <section className="panel">
        {catalogs.isPending && <p className="muted">Loading catalogs…</p>}
        {catalogs.isError && <ProblemView error={catalogs.error} />}
        {catalogs.data?.results.length === 0 && (
          <p className="muted">No catalogs yet. A catalog is a data source (Hive, Iceberg, PostgreSQL, …) clusters query.</p>
        )}
        {catalogs.data && catalogs.data.results.length > 0 && (
          <table className="operations">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Connector</th>
                <th scope="col">Version</th>
                <th scope="col">Clusters</th>
              </tr>
            </thead>
            <tbody>
              {catalogs.data.results.map((c) => (
                <tr key={c.id}>
                  <td>
                    <Link to={orgPath(org, "catalogs", c.id)}>{c.name}</Link>
                  </td>
                  <td>{c.connector}</td>
                  <td>{c.version}</td>
                  <td>{propagationSummary(c)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
    </>
  );
}

function Attach({ org, catalog }: { org: string; catalog: Catalog }) {
  const queryClient = useQueryClient();
  const clusters = useQuery({ queryKey: ["orgs", org, "clusters"], queryFn: () => fetchClusters(org) });
  const [chosen, setChosen] = useState("");
  const change = useMutation({
    mutationFn: ({ cluster, catalogs }: { cluster: string; catalogs: string[] }) => setClusterCatalogs(org, cluster, catalogs),
    onSuccess: () => {
      setChosen("");
      void queryClient.invalidateQueries({ queryKey: catalogsKey(org) });
      void queryClient.invalidateQueries({ queryKey: ["orgs", org, "clusters"] });
    },
  });
  const all = (clusters.data?.results ?? []).filter((c) => c.status !== "deleted" && c.status !== "deleting");
  const attachable = all.filter((c) => !c.catalogs.includes(catalog.id));
  const attached = all.filter((c) => c.catalogs.includes(catalog.id));
  return (
    <div className="actions">
      <label htmlFor="attach-cluster">Cluster</label>
      <select id="attach-cluster" value={chosen} onChange={(e) => setChosen(e.target.value)}>
          <option value="">Choose a cluster…</option>
          {attachable.map((c) => (
            <option key={c.id} value={c.id}>
              {c.name}
            </option>
          ))}
      </select>
      <button
        type="button"
        disabled={!chosen || change.isPending}
        onClick={() => {
          const cluster = all.find((c) => c.id === chosen);
          if (cluster) change.mutate({ cluster: cluster.id, catalogs: [...cluster.catalogs, catalog.id] });
        }}
      >
        Attach
      </button>
      {attached.map((c) => (
        <button
          key={c.id}
          type="button"
          className="button-secondary"
          disabled={change.isPending}
          onClick={() => change.mutate({ cluster: c.id, catalogs: c.catalogs.filter((id) => id !== catalog.id) })}
        >
          Detach from {c.name}
        </button>
      ))}
      {clusters.isError && <ProblemView error={clusters.error} />}
      {change.isError && <ProblemView error={change.error} />}
    </div>
  );
}

export function CatalogPage() {
  const { org = "", id = "" } = useParams();
  const canWrite = canOperate(useRole(org));
  const catalog = useQuery({
    queryKey: [...catalogsKey(org), id],
    queryFn: () => fetchCatalog(org, id),
    // Follow propagation until every attached cluster runs this version (or failed).
    refetchInterval: (query) =>
      query.state.data?.propagation.some((p) => p.status === "pending") ? 2_000 : false,
  });
  if (catalog.isPending) return <p className="muted">Loading the catalog…</p>;
  if (catalog.isError) {
    return (
      <>
        <h1>Catalog {id}</h1>
        <ProblemView error={catalog.error} />
      </>
    );
  }
  const c = catalog.data;
  return (
    <>
      <h1>{c.name}</h1>
      <section className="panel" aria-labelledby="propagation-heading">
        <h2 id="propagation-heading">Clusters</h2>
        {c.propagation.length === 0 ? (
          <p className="muted">Not attached to any cluster.</p>
        ) : (
          <table className="operations">
            <thead>
              <tr>
                <th scope="col">Cluster</th>
                <th scope="col">Status</th>
                <th scope="col">Live version</th>
                <th scope="col">Observed</th>
              </tr>
            </thead>
            <tbody>
              {c.propagation.map((p) => (
                <tr key={p.cluster}>
                  <td>
                    <Link to={orgPath(org, "clusters", p.cluster)}>
                      <code>{p.cluster}</code>
                    </Link>
                  </td>
                  <td>
                    <StatusBadge status={p.status} />
                    {p.message && <div className="small">{p.message}</div>}
                  </td>
                  <td>
                    {p.version} of {c.version}
                  </td>
                  <td>
                    <When iso={p.observed_at} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {canWrite && <Attach org={org} catalog={c} />}
      </section>
      <section className="panel" aria-labelledby="catalog-details">
        <h2 id="catalog-details">Configuration</h2>
        <dl className="details">
          <dt>Connector</dt>
          <dd>{c.connector}</dd>
          <dt>Version</dt>
          <dd>{c.version}</dd>
          {Object.entries(c.properties).map(([key, value]) => (
            <div key={key} className="details__row">
              <dt>
                <code>{key}</code>
              </dt>
              <dd>
                <code>{value}</code>
              </dd>
            </div>
          ))}
          {Object.entries(c.secrets).map(([key, ref]) => (
            <div key={key} className="details__row">
              <dt>
                <code>{key}</code> (secret)
              </dt>
              <dd>
                <code>{typeof ref === "string" ? ref : JSON.stringify(ref)}</code>
              </dd>
            </div>
          ))}
          <dt>Updated</dt>
          <dd>
            <When iso={c.updated_at} />
          </dd>
        </dl>
      </section>
    </>
  );
}
