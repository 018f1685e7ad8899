import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useCallback } from "react";
import { Link, useParams } from "react-router";

import { type ComputePlane, fetchComputePlane, fetchComputePlanes, repairComputePlane } from "../api/client";
import { canAdminister, useRole } from "../app/me";
import { ProblemView } from "../app/ProblemView";
import { orgPath } from "../app/sections";
import { StatusBadge } from "../app/StatusBadge";
import { When } from "../app/time";
import { OperationProgress } from "./OperationProgress";

const planesKey = (org: string) => ["orgs", org, "compute-planes"];

export function ComputePlanesPage() {
  const { org = "" } = useParams();
  const planes = useQuery({ queryKey: planesKey(org), queryFn: () => fetchComputePlanes(org) });
  return (
    <>
      <h1>Compute planes</h1>
      <section className="panel">
        {planes.isPending && <p className="muted">Loading compute planes…</p>}
        {planes.isError && <ProblemView error={planes.error} />}
        {planes.data?.results.length === 0 && (
          <p className="muted">
            No compute planes yet. A compute plane is the VPC and Kubernetes cluster in your cloud account that
            runs your clusters.
          </p>
        )}
        {planes.data && planes.data.results.length > 0 && (
          <table className="operations">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Status</th>
                <th scope="col">Region</th>
                <th scope="col">Cloud account</th>
                <th scope="col">Created</th>
              </tr>
            </thead>
            <tbody>
              {planes.data.results.map((plane) => (
                <tr key={plane.id}>
                  <td>
                    <Link to={orgPath(org, "compute-planes", plane.id)}>{plane.name}</Link>
                  </td>
                  <td>
                    <StatusBadge status={plane.status} />
                    {plane.status === "degraded" && (
                      <span className="muted small"> {plane.findings.length} finding(s)</span>
                    )}
                  </td>
                  <td>{plane.region}</td>
                  <td>
                    <code>{plane.cloud_account}</code>
                  </td>
                  <td>
                    <When iso={plane.created_at} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {planes.data?.more && <p className="muted small">Showing the first 100 compute planes.</p>}
      </section>
    </>
  );
}

function Findings({ org, plane, canRepair }: { org: string; plane: ComputePlane; canRepair: boolean }) {
  const queryClient = useQueryClient();
  const repair = useMutation({
    mutationFn: () => repairComputePlane(org, plane.id),
    // The answer is the plane with its new operation: show it at once, then refresh the list.
    onSuccess: (updated) => {
      queryClient.setQueryData([...planesKey(org), plane.id], updated);
      void queryClient.invalidateQueries({ queryKey: planesKey(org), exact: true });
    },
  });
  return (
    <section className="panel findings" aria-labelledby="findings-heading">
      <h2 id="findings-heading">What the last check found</h2>
      <p className="muted small">
        Checked <When iso={plane.last_checked_at} />. Repair runs the provisioning steps again; they create what is
        missing.
      </p>
      <ul>
        {plane.findings.map((f) => (
          <li key={`${f.check}:${f.detail}`}>{f.detail}</li>
        ))}
      </ul>
      {canRepair && (
        <button type="button" onClick={() => repair.mutate()} disabled={repair.isPending}>
          {repair.isPending ? "Starting repair…" : "Repair"}
        </button>
      )}
      {repair.isError && <ProblemView error={repair.error} />}
    </section>
  );
}

export function ComputePlanePage() {
  const { org = "", id = "" } = useParams();
  const queryClient = useQueryClient();
  const canAdmin = canAdminister(useRole(org));
  const plane = useQuery({ queryKey: [...planesKey(org), id], queryFn: () => fetchComputePlane(org, id) });
  const refresh = useCallback(() => {
    void queryClient.invalidateQueries({ queryKey: planesKey(org) });
  }, [queryClient, org]);

  if (plane.isPending) return <p className="muted">Loading the compute plane…</p>;
  if (plane.isError) {
    return (
      <>
        <h1>Compute plane {id}</h1>
        <ProblemView error={plane.error} />
      </>
    );
  }
  const p = plane.data;
  return (
    <>
      <h1>
        {p.name} <StatusBadge status={p.status} />
      </h1>
      {p.status === "degraded" && <Findings org={org} plane={p} canRepair={canAdmin} />}
      {p.operation && (
        <OperationProgress org={org} operationId={p.operation.id} canRetry={canAdmin} onFinished={refresh} />
      )}
      <section className="panel" aria-labelledby="plane-details">
        <h2 id="plane-details">Details</h2>
        <dl className="details">
          <dt>ID</dt>
          <dd>
            <code>{p.id}</code>
          </dd>
          <dt>Region</dt>
          <dd>{p.region}</dd>
          <dt>Cloud account</dt>
          <dd>
            <code>{p.cloud_account}</code>
          </dd>
          <dt>VPC</dt>
          <dd>
            <code>{p.resources.vpc_id ?? "—"}</code> ({p.vpc_cidr}, {p.availability_zones} availability zones)
          </dd>
          <dt>Kubernetes</dt>
          <dd>
            {p.resources.eks_cluster_name ?? "—"} · version {p.kubernetes_version} · endpoint {p.endpoint_access}
          </dd>
          <dt>Agent</dt>
          <dd>
            {p.agent.status}
            {p.agent.version && ` (${p.agent.version})`} · last seen <When iso={p.agent.last_seen_at} />
          </dd>
          <dt>Last drift check</dt>
          <dd>
            <When iso={p.last_checked_at} />
          </dd>
          <dt>Created</dt>
          <dd>
            <When iso={p.created_at} />
          </dd>
        </dl>
      </section>
    </>
  );
}
