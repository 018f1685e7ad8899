import type { Operation } from "../api/client";
import { StatusBadge } from "../app/StatusBadge";
import { When } from "../app/time";

export function OperationsTable({ operations }: { operations: readonly Operation[] }) {
  return (
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
        {operations.map((op) => (
          <tr key={op.id}>
            <td>
              <code>{op.id}</code>
            </td>
            <td>{op.kind}</td>
            <td>
              {op.target.type} <code>{op.target.id}</code>
            </td>
            <td>
              <StatusBadge status={op.status} />
              {op.error && <div className="error small">{op.error.message}</div>}
            </td>
            <td>
              <progress max={100} value={op.progress} aria-label={`${op.progress}%`} /> {op.progress}%
            </td>
            <td>
              <When iso={op.created_at} />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
