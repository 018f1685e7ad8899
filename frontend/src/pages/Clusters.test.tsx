import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";

import type { Cluster } from "../api/client";
import { fakeApi, on, renderConsole } from "../testing/fakeApi";
import { connectionStrings } from "./connection";

function cluster(overrides: Partial<Cluster> = {}): Cluster {
  return {
    id: "cl_1",
    name: "adhoc",
    compute_plane: "cp_1",
    engine: "trino",
    version: "467",
    status: "running",
    endpoint: "http://lp-cl-1-coordinator.lakeplane.svc:8080",
    coordinator: {},
    workers: { desired: 3, ready: 2, min_count: 1, max_count: 10, instance_type: "m6i.xlarge", spot: false },
    catalogs: ["sales"],
    cache: null,
    auto_suspend_minutes: 30,
    restart_generation: 0,
    node_group: "lp-cl-1",
    operation: null,
    created_at: "2026-12-01T10:00:00Z",
    deleted_at: null,
    ...overrides,
  } as Cluster;
}

const CLUSTER = /^\/api\/v1\/orgs\/(acme|globex)\/clusters\/cl_1$/;

describe("connectionStrings", () => {
  it("gives the CLI command and the JDBC URL for the endpoint", () => {
    expect(connectionStrings("trino", "http://coord.svc:8080")).toEqual({
      cli: "trino --server http://coord.svc:8080",
      jdbc: "jdbc:trino://coord.svc:8080",
    });
    expect(connectionStrings("presto", "https://gw.example.com")).toEqual({
      cli: "presto --server https://gw.example.com",
      jdbc: "jdbc:presto://gw.example.com:443?SSL=true",
    });
  });
});

describe("clusters", () => {
  it("lists clusters with ready/desired workers", async () => {
    fakeApi([on("GET", "/api/v1/orgs/acme/clusters", { body: { results: [cluster()], next: null } })]);
    renderConsole("/orgs/acme/clusters");
    const row = (await screen.findByRole("link", { name: "adhoc" })).closest("tr") as HTMLElement;
    expect(row).toHaveTextContent("2/3");
    expect(within(row).getByTestId("status")).toHaveTextContent("running");
  });

  it("validates the size as you type and shows the API's field error next to the field", async () => {
    const user = userEvent.setup();
    const calls = fakeApi([
      on("GET", CLUSTER, { body: cluster() }),
      on("POST", "/api/v1/orgs/acme/clusters/cl_1/resize", {
        status: 422,
        body: {
          title: "The size is outside the cluster's bounds.",
          status: 422,
          errors: { workers: ["Between min_count (1) and max_count (10); PATCH the bounds first."] },
        },
      }),
    ]);
    renderConsole("/orgs/acme/clusters/cl_1");
    const workers = await screen.findByRole("spinbutton", { name: "Workers" });
    expect(screen.getByTestId("connect-cli")).toHaveTextContent("trino --server http://lp-cl-1-coordinator.lakeplane.svc:8080");

    await user.clear(workers);
    await user.type(workers, "11");
    expect(workers).toHaveAccessibleDescription("Between 1 and 10 (the cluster's bounds).");
    expect(screen.getByRole("button", { name: "Resize" })).toBeDisabled();

    // The bounds changed on the server meanwhile: the API's answer is shown at the field.
    await user.clear(workers);
    await user.type(workers, "5");
    await user.click(screen.getByRole("button", { name: "Resize" }));
    await waitFor(() =>
      expect(workers).toHaveAccessibleDescription("Between min_count (1) and max_count (10); PATCH the bounds first."),
    );
    expect(screen.getByText("The size is outside the cluster's bounds.")).toBeInTheDocument();
    expect(screen.getAllByText(/PATCH the bounds first/)).toHaveLength(1); // at the field, not twice
    expect(calls.find((c) => c.method === "POST")?.body).toEqual({ workers: 5 });
  });

  it("a resize that starts an operation shows it", async () => {
    const user = userEvent.setup();
    let current = cluster();
    fakeApi([
      on("GET", CLUSTER, () => ({ body: current })),
      on("POST", "/api/v1/orgs/acme/clusters/cl_1/resize", () => {
        current = cluster({ status: "resizing", workers: { ...current.workers, desired: 5 }, operation: { id: "op_2", status: "queued", progress: 0 } });
        return { status: 202, body: current };
      }),
      on("GET", "/api/v1/orgs/acme/operations/op_2", {
        body: { id: "op_2", kind: "cluster.resize", target: { type: "cluster", id: "cl_1" }, status: "running", progress: 50, steps: [], error: null, attempts: 1, created_at: "2026-12-07T10:00:00Z", started_at: null, finished_at: null },
      }),
    ]);
    renderConsole("/orgs/acme/clusters/cl_1");
    const workers = await screen.findByRole("spinbutton", { name: "Workers" });
    await user.clear(workers);
    await user.type(workers, "5");
    await user.click(screen.getByRole("button", { name: "Resize" }));
    const progress = await screen.findByRole("region", { name: "Operation progress" });
    await waitFor(() => expect(progress).toHaveTextContent("cluster.resize"));
    expect(screen.getByTestId("workers-ready")).toHaveTextContent("2/5");
  });

  it("offers the actions the status allows", async () => {
    fakeApi([on("GET", CLUSTER, { body: cluster({ status: "stopped", endpoint: null }) })]);
    renderConsole("/orgs/acme/clusters/cl_1");
    const actions = await screen.findByRole("region", { name: "Actions" });
    expect(within(actions).getAllByRole("button").map((b) => b.textContent)).toEqual(["Start", "Delete…"]);
    expect(screen.getByText(/connection details appear while the cluster is running/)).toBeInTheDocument();
  });

  it("stop posts and shows the stopping cluster", async () => {
    const user = userEvent.setup();
    let current = cluster();
    const calls = fakeApi([
      on("GET", CLUSTER, () => ({ body: current })),
      on("POST", "/api/v1/orgs/acme/clusters/cl_1/stop", () => {
        current = cluster({ status: "stopping" });
        return { status: 202, body: current };
      }),
    ]);
    renderConsole("/orgs/acme/clusters/cl_1");
    await user.click(await screen.findByRole("button", { name: "Stop" }));
    await waitFor(() => expect(screen.getByRole("heading", { level: 1 })).toHaveTextContent("stopping"));
    expect(calls.filter((c) => c.method === "POST").map((c) => c.path)).toEqual(["/api/v1/orgs/acme/clusters/cl_1/stop"]);
  });

  it("deletes only after the name is typed", async () => {
    const user = userEvent.setup();
    let current = cluster();
    const calls = fakeApi([
      on("GET", CLUSTER, () => ({ body: current })),
      on("DELETE", CLUSTER, () => {
        current = cluster({ status: "deleting" });
        return { status: 202, body: current };
      }),
    ]);
    renderConsole("/orgs/acme/clusters/cl_1");
    await user.click(await screen.findByRole("button", { name: "Delete…" }));
    const confirm = screen.getByRole("form", { name: "Confirm deletion" });
    const button = within(confirm).getByRole("button", { name: "Delete adhoc" });
    await user.type(within(confirm).getByLabelText("Cluster name"), "adho");
    expect(button).toBeDisabled();
    await user.type(within(confirm).getByLabelText("Cluster name"), "c");
    await user.click(button);
    await waitFor(() => expect(screen.getByRole("heading", { level: 1 })).toHaveTextContent("deleting"));
    expect(calls.filter((c) => c.method === "DELETE")).toHaveLength(1);
    expect(screen.queryByRole("region", { name: "Actions" })).toBeNull();
  });

  it("a viewer sees no buttons it may not use", async () => {
    fakeApi([on("GET", CLUSTER, { body: cluster() })]);
    renderConsole("/orgs/globex/clusters/cl_1");
    await screen.findByRole("heading", { level: 1, name: /adhoc/ });
    expect(screen.queryByRole("region", { name: "Actions" })).toBeNull();
    expect(screen.queryByRole("button", { name: "Resize" })).toBeNull();
    expect(screen.queryByRole("button", { name: /Delete/ })).toBeNull();
  });
});
