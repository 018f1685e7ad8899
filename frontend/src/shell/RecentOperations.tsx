import { useEffect, useState } from "react";

import { fetchRecentOperations, type Operation } from "../api/client";
import { errorMessage } from "../api/problem";

type State =
  | { kind: "loading" }
  | { kind: "error"; message: string }
  | { kind: "loaded"; operations: Operation[] };

const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

export function RecentOperations({ org }: { org: string }) {
  const [state, setState] = useState<State>({ kind: "loading" });

  useEffect(() => {
    let live = true; // a late answer for the previous org must not overwrite this one's
    setState({ kind: "loading" });
    fetchRecentOperations(org, 10).then(
      (operations) => live && setState({ kind: "loaded", operations }),
      (error: unknown) => live && setState({ kind: "error", message: errorMessage(error) }),
    );
    return () => {
      live = false;
    };
  }, [org]);

  return (
    <section className="panel" aria-labelledby="recent-operations-heading">
      <h2 id="recent-operations-heading">Recent operations</h2>
      {state.kind === "loading" && <p className="muted" aria-live="polite">Loading operations…</p>}
      {state.kind === "error" && (
        <p className="error" role="alert">
          {state.message}
        </p>
      )}
      {state.kind === "loaded" && state.operations.length === 0 && (
        <p className="muted">No operations yet. Provisioning and changes to clusters will be listed here.</p>
      )}
      {state.kind === "loaded" && state.operations.length > 0 && (
        <table className="operations">
          <thead>
            <tr>
              <th scope="col">Operation</th>
              <th scope="col">Kind</th>
              <th scope="col">Target</th>
              <th scope="col">Status</th>
              <th scope="col">Progress</th>
              <th scope="col">Started</th>
            </tr>
          </thead>
          <tbody>
            {state.operations.map((op) => (
              <tr key={op.id}>
                <td>
                  <code>{op.id}</code>
                </td>
                <td>{op.kind}</td>
                <td>
                  {op.target.type} <code>{op.target.id}</code>
                </td>
                <td>
                  <span className={`status status--${op.status}`}>{op.status}</span>
                  {op.error && <div className="error small">{op.error.message}</div>}
                </td>
                <td>
                  <progress max={100} value={op.progress} aria-label={`${op.progress}%`} /> {op.progress}%
                </td>
                <td>
                  <time dateTime={op.created_at}>{dateFormat.format(new Date(op.created_at))}</time>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
