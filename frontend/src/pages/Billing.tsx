// This month's (or last month's) statement: total or month-to-date with the forecast, the lines
// by cluster × instance type, and the CSV/PDF downloads. Roles that may not read money get the
// API's 403 as its sentence.

import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { useParams } from "react-router";

import { fetchStatement, statementDownloadUrl } from "../api/client";
import { ProblemView } from "../app/ProblemView";

/** YYYY-MM of this month and the one before, in the browser's time zone. */
export function recentMonths(now: Date = new Date()): { thisMonth: string; lastMonth: string } {
  const fmt = (d: Date) => `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}`;
  return { thisMonth: fmt(now), lastMonth: fmt(new Date(now.getFullYear(), now.getMonth() - 1, 1)) };
}

export function money(cents: number | null | undefined, currency: string): string {
  if (cents === null || cents === undefined) return "—";
  return new Intl.NumberFormat(undefined, { style: "currency", currency }).format(cents / 100);
}

export function BillingPage() {
  const { org = "" } = useParams();
  const { thisMonth, lastMonth } = recentMonths();
  const [month, setMonth] = useState(thisMonth);
  const statement = useQuery({ queryKey: ["orgs", org, "billing", month], queryFn: () => fetchStatement(org, month) });
  const s = statement.data;
  return (
    <>
      <h1>Billing</h1>
      <div className="actions" role="group" aria-label="Month">
        {[
          { value: thisMonth, label: "This month" },
          { value: lastMonth, label: "Last month" },
        ].map((m) => (
          <button
            key={m.value}
            type="button"
            className={m.value === month ? "" : "button-secondary"}
            aria-pressed={m.value === month}
            onClick={() => setMonth(m.value)}
          >
            {m.label} ({m.value})
          </button>
        ))}
      </div>
      {statement.isPending && <p className="muted">Loading the statement…</p>}
      {statement.isError && <ProblemView error={statement.error} />}
      {s && (
        <>
          <section className="panel" aria-label="Summary">
            <h2>
              {s.status === "final" ? "Statement" : "Month to date"} · {s.month}
            </h2>
            <p className="figure" data-testid="total">
              {money(s.total_cents, s.currency)}
            </p>
            {s.status === "month_to_date" && (
              <p>
                Forecast for the month: <strong data-testid="forecast">{money(s.forecast_total_cents, s.currency)}</strong>
              </p>
            )}
            <p className="muted small">
              Days in {s.time_zone}. Your own AWS cost for these nodes, estimated from list prices:{" "}
              {money(s.aws_estimate_cents, s.currency)}.
            </p>
            <p>
              <a href={statementDownloadUrl(org, s.month, "csv")} download>
                Download CSV
              </a>{" "}
              ·{" "}
              <a href={statementDownloadUrl(org, s.month, "pdf")} download>
                Download PDF
              </a>
            </p>
          </section>
          <section className="panel" aria-labelledby="lines-heading">
            <h2 id="lines-heading">By cluster and instance type</h2>
            {s.lines.length === 0 ? (
              <p className="muted">No usage in {s.month}.</p>
            ) : (
              <table className="operations">
                <thead>
                  <tr>
                    <th scope="col">Cluster</th>
                    <th scope="col">Instance type</th>
                    <th scope="col">Role</th>
                    <th scope="col">Purchase</th>
                    <th scope="col">Node-hours</th>
                    <th scope="col">Unit-hours</th>
                    <th scope="col">Amount</th>
                  </tr>
                </thead>
                <tbody>
                  {s.lines.map((line) => (
                    <tr key={`${line.cluster.id}:${line.instance_type}:${line.role}:${line.purchase_option}`}>
                      <td>{line.cluster.name || line.cluster.id}</td>
                      <td>{line.instance_type}</td>
                      <td>{line.role}</td>
                      <td>{line.purchase_option}</td>
                      <td className="num">{line.node_hours}</td>
                      <td className="num">{line.compute_unit_hours}</td>
                      <td className="num">{money(line.amount_cents, s.currency)}</td>
                    </tr>
                  ))}
                </tbody>
                <tfoot>
                  <tr>
                    <th scope="row" colSpan={6}>
                      Subtotal
                    </th>
                    <td className="num">{money(s.subtotal_cents, s.currency)}</td>
                  </tr>
                  {s.discount && s.discount.cents !== 0 && (
                    <tr>
                      <th scope="row" colSpan={6}>
                        Discount ({s.discount.percent} %)
                      </th>
                      <td className="num">{money(-s.discount.cents, s.currency)}</td>
                    </tr>
                  )}
                  {!!s.credits_cents && (
                    <tr>
                      <th scope="row" colSpan={6}>
                        Credits
                      </th>
                      <td className="num">{money(-s.credits_cents, s.currency)}</td>
                    </tr>
                  )}
                  <tr>
                    <th scope="row" colSpan={6}>
                      Total
                    </th>
                    <td className="num">
                      <strong>{money(s.total_cents, s.currency)}</strong>
                    </td>
                  </tr>
                </tfoot>
              </table>
            )}
          </section>
        </>
      )}
    </>
  );
}
