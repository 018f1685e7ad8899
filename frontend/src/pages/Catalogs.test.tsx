import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";

import type { Catalog, Cluster } from "../api/client";
import { fakeApi, on, renderConsole } from "../testing/fakeApi";

function catalog(overrides: Partial<Catalog> = {}): Catalog {
  return {
    id: "cat_1",
    name: "sales",
    connector: "postgresql",
    metastore: null,
    properties: { "connection-url": "jdbc:postgresql://db:5432/sales" },
    secrets: { "connection-password": "arn:aws:secretsmanager:us-east-1:123456789012:secret:sales" },
    version: 2,
    clusters: ["cl_1"],
    propagation: [{ cluster: "cl_1", version: 1, status: "failed", message: "Connection refused", observed_at: "2026-12-07T10:00:00Z" }],
    created_at: "2026-12-01T10:00:00Z",
    updated_at: "2026-12-07T10:00:00Z",
    ...overrides,
  } as Catalog;
}

const cluster = (id: string, name: string, catalogs: string[]) =>
  ({ id, name, status: "running", catalogs, workers: { desired: 1, ready: 1 } }) as unknown as Cluster;

describe("catalogs", () => {
  it("lists catalogs with where they are live", async () => {
    fakeApi([on("GET", "/api/v1/orgs/acme/catalogs", { body: { results: [catalog()], next: null } })]);
    renderConsole("/orgs/acme/catalogs");
    const row = (await screen.findByRole("link", { name: "sales" })).closest("tr") as HTMLElement;
    expect(row).toHaveTextContent("live on 0 of 1 cluster(s)");
  });

  it("shows propagation per cluster with the engine's message, and attaches to another cluster", async () => {
    const user = userEvent.setup();
    const calls = fakeApi([
      on("GET", "/api/v1/orgs/acme/catalogs/cat_1", { body: catalog() }),
      on("GET", "/api/v1/orgs/acme/clusters", {
        body: { results: [cluster("cl_1", "adhoc", ["cat_1"]), cluster("cl_2", "etl", ["cat_9"])], next: null },
      }),
      on("PATCH", "/api/v1/orgs/acme/clusters/cl_2", { body: cluster("cl_2", "etl", ["cat_9", "cat_1"]) }),
    ]);
    renderConsole("/orgs/acme/catalogs/cat_1");
    expect(await screen.findByText("Connection refused")).toBeInTheDocument();
    expect(screen.getByText("1 of 2")).toBeInTheDocument();
    expect(screen.getByText("arn:aws:secretsmanager:us-east-1:123456789012:secret:sales")).toBeInTheDocument();
    await screen.findByRole("option", { name: "etl" });
    expect(screen.getByRole("button", { name: "Detach from adhoc" })).toBeInTheDocument();
    await user.selectOptions(screen.getByLabelText("Cluster"), "cl_2");
    await user.click(screen.getByRole("button", { name: "Attach" }));
    await waitFor(() => expect(calls.some((c) => c.method === "PATCH")).toBe(true));
    expect(calls.find((c) => c.method === "PATCH")?.body).toEqual({ catalogs: ["cat_9", "cat_1"] });
  });

  it("a viewer gets no attach controls", async () => {
    fakeApi([on("GET", "/api/v1/orgs/globex/catalogs/cat_1", { body: catalog() })]);
    renderConsole("/orgs/globex/catalogs/cat_1");
    const heading = await screen.findByRole("heading", { level: 2, name: "Clusters" });
    expect(within(heading.parentElement as HTMLElement).queryByRole("button")).toBeNull();
  });
});
