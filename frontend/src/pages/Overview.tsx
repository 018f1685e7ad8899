import { useQuery } from "@tanstack/react-query";
import { useParams } from "react-router";

import { fetchRecentOperations } from "../api/client";
import { useOrganization } from "../app/me";
import { ProblemView } from "../app/ProblemView";
import { OperationsTable } from "./OperationsTable";

export function Overview() {
  const { org = "" } = useParams();
  const detail = useOrganization(org);
  const operations = useQuery({
    queryKey: ["orgs", org, "operations", { limit: 10 }],
    queryFn: () => fetchRecentOperations(org, 10),
    // What is running now should move without a reload.
    refetchInterval: (query) =>
      query.state.data?.some((op) => op.status === "queued" || op.status === "running") ? 2_000 : 15_000,
  });
  return (
    <>
      <section className="org-heading">
        <h1 data-testid="org-name">{detail.data?.name ?? org}</h1>
        {detail.data && (
          <p className="muted">
            <code>{detail.data.slug}</code> · your role: <strong data-testid="org-role">{detail.data.role}</strong>
          </p>
        )}
        {detail.isError && <ProblemView error={detail.error} />}
      </section>
      <section className="panel" aria-labelledby="recent-operations-heading">
        <h2 id="recent-operations-heading">Recent operations</h2>
        {operations.isPending && (
          <p className="muted" aria-live="polite">
            Loading operations…
          </p>
        )}
        {operations.isError && <ProblemView error={operations.error} />}
        {operations.data?.length === 0 && (
          <p className="muted">No operations yet. Provisioning and changes to clusters will be listed here.</p>
        )}
        {operations.data && operations.data.length > 0 && <OperationsTable operations={operations.data} />}
      </section>
    </>
  );
}
