import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";

import { fakeApi, on, renderConsole } from "../testing/fakeApi";
import { recentMonths } from "./Billing";

const { thisMonth, lastMonth } = recentMonths();

function statement(month: string, status: "final" | "month_to_date") {
  return {
    month,
    time_zone: "Europe/Berlin",
    status,
    as_of: "2026-12-07T10:00:00Z",
    currency: "USD",
    lines: [
      {
        cluster: { id: "cl_1", name: "adhoc" },
        compute_plane: "cp_1",
        instance_type: "r6i.2xlarge",
        role: "worker",
        purchase_option: "on_demand",
        price_book: "2026-01",
        node_hours: "72.0000",
        estimated_node_hours: "0.0000",
        compute_unit_hours: "144.0000",
        unit_price_cents: "10",
        amount_cents: 1440,
      },
    ],
    subtotal_cents: 1440,
    discount: { percent: "0", cents: 0 },
    credits: [],
    credits_cents: 0,
    total_cents: 1440,
    forecast_total_cents: status === "month_to_date" ? 5000 : null,
    aws_estimate_cents: 3000,
  };
}

describe("recentMonths", () => {
  it("steps back across a year", () => {
    expect(recentMonths(new Date(2027, 0, 15))).toEqual({ thisMonth: "2027-01", lastMonth: "2026-12" });
  });
});

describe("billing", () => {
  it("shows month to date with the forecast, the lines and downloads; last month is final", async () => {
    const user = userEvent.setup();
    fakeApi([
      on("GET", `/api/v1/orgs/acme/billing/statements/${thisMonth}`, { body: statement(thisMonth, "month_to_date") }),
      on("GET", `/api/v1/orgs/acme/billing/statements/${lastMonth}`, { body: statement(lastMonth, "final") }),
    ]);
    renderConsole("/orgs/acme/billing");
    const summary = await screen.findByRole("region", { name: "Summary" });
    expect(summary).toHaveTextContent(`Month to date · ${thisMonth}`);
    expect(within(summary).getByTestId("total")).toHaveTextContent("14.40");
    expect(within(summary).getByTestId("forecast")).toHaveTextContent("50.00");
    expect(within(summary).getByRole("link", { name: "Download CSV" })).toHaveAttribute(
      "href",
      `/api/v1/orgs/acme/billing/statements/${thisMonth}.csv`,
    );
    expect(screen.getByRole("cell", { name: "adhoc" })).toBeInTheDocument();

    await user.click(screen.getByRole("button", { name: new RegExp(`Last month`) }));
    await waitFor(() => expect(screen.getByRole("region", { name: "Summary" })).toHaveTextContent(`Statement · ${lastMonth}`));
    expect(screen.queryByTestId("forecast")).toBeNull();
  });

  it("a member is told the API's reason", async () => {
    fakeApi([
      on("GET", `/api/v1/orgs/globex/billing/statements/${thisMonth}`, {
        status: 403,
        body: { title: "Not allowed.", status: 403, detail: "Statements are for admins and owners." },
      }),
    ]);
    renderConsole("/orgs/globex/billing");
    expect(await screen.findByRole("alert")).toHaveTextContent("Statements are for admins and owners.");
  });
});
