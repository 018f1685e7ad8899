// A long operation as it runs: a progress bar, its steps (done, running, failed with the error)
// and a retry button for a failed one. It polls the operation with backoff until it ends, then
// tells the page (which refreshes what the operation changed).

import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useRef } from "react";

import { fetchOperation, type Operation, retryOperation } from "../api/client";
import { ProblemView } from "../app/ProblemView";
import { StatusBadge } from "../app/StatusBadge";

const FIRST_POLL_MS = 1_000;
const LONGEST_POLL_MS = 5_000;

export function isActive(status: string): boolean {
  return status === "queued" || status === "running";
}

/** 1 s, then 1.5× per answer up to 5 s: quick feedback at first, little load for long runs. */
export function pollDelay(answers: number): number {
  return Math.min(FIRST_POLL_MS * 1.5 ** Math.max(0, answers - 1), LONGEST_POLL_MS);
}

interface Props {
  org: string;
  operationId: string;
  canRetry: boolean;
  onFinished?: (operation: Operation) => void;
}

export function OperationProgress({ org, operationId, canRetry, onFinished }: Props) {
  const queryClient = useQueryClient();
  const key = ["orgs", org, "operations", operationId];
  const operation = useQuery({
    queryKey: key,
    queryFn: () => fetchOperation(org, operationId),
    refetchInterval: (query) =>
      !query.state.data || isActive(query.state.data.status) ? pollDelay(query.state.dataUpdateCount) : false,
  });
  const retry = useMutation({
    mutationFn: () => retryOperation(org, operationId),
    onSuccess: (op) => queryClient.setQueryData(key, op),
  });

  // Tell the page once per run of the operation, when it leaves queued/running.
  const reported = useRef<string | null>(null);
  const op = operation.data;
  useEffect(() => {
    if (!op) return;
    if (isActive(op.status)) {
      reported.current = null;
    } else if (reported.current !== op.status) {
      reported.current = op.status;
      onFinished?.(op);
    }
  }, [op, onFinished]);

  if (operation.isPending) return <p className="muted">Loading the operation…</p>;
  if (operation.isError) return <ProblemView error={operation.error} />;
  const data = operation.data;
  return (
    <section className="panel operation" aria-label="Operation progress" data-testid="operation">
      <h2>
        {data.kind} <StatusBadge status={data.status} />
      </h2>
      <p>
        <progress max={100} value={data.progress} aria-label={`Progress ${data.progress}%`} /> {data.progress}%{" "}
        <code className="muted" data-testid="operation-id">{data.id}</code>
      </p>
      <ol className="steps">
        {data.steps.map((step) => (
          <li key={step.name} className={`step step--${step.status}`}>
            <span className="step__name">{step.name}</span> <StatusBadge status={step.status} />
            {step.detail && <span className="muted small"> {step.detail}</span>}
          </li>
        ))}
      </ol>
      {data.error && (
        <p className="error" role="alert">
          {data.error.message}
        </p>
      )}
      {data.status === "failed" && canRetry && (
        <button type="button" onClick={() => retry.mutate()} disabled={retry.isPending}>
          Retry
        </button>
      )}
      {retry.isError && <ProblemView error={retry.error} />}
      <p role="status" className="muted small">
        {data.status === "succeeded" && "Finished."}
        {data.status === "failed" && "Failed."}
      </p>
    </section>
  );
}
