import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";

import type { ComputePlane, Operation } from "../api/client";
import { fakeApi, on, renderConsole } from "../testing/fakeApi";
import { pollDelay } from "./OperationProgress";

const FINDING = "The VPC vpc-0abc no longer exists.";

function plane(overrides: Partial<ComputePlane> = {}): ComputePlane {
  return {
    id: "cp_1",
    name: "analytics",
    cloud_account: "acct_1",
    region: "eu-west-1",
    vpc_cidr: "10.42.0.0/16",
    availability_zones: 2,
    kubernetes_version: "1.31",
    endpoint_access: "private",
    public_access_cidrs: [],
    control_plane_logging: [],
    nat_mode: "per_az",
    kms_key_arn: "",
    status: "degraded",
    operation: null,
    resources: { vpc_id: "vpc-0abc", subnet_ids: [], eks_cluster_name: "lp-analytics", eks_endpoint: null, buckets: {} },
    agent: { status: "connected", version: "0.4.0", last_seen_at: "2026-12-07T10:00:00Z" },
    findings: [
      { check: "vpc", detail: FINDING },
      { check: "subnets", detail: "The subnet subnet-1 no longer exists." },
    ],
    last_checked_at: "2026-12-07T10:00:00Z",
    created_at: "2026-12-01T10:00:00Z",
    deleted_at: null,
    ...overrides,
  } as ComputePlane;
}

function operation(overrides: Partial<Operation> = {}): Operation {
  return {
    id: "op_9",
    kind: "computeplane.repair",
    target: { type: "compute_plane", id: "cp_1" },
    status: "running",
    progress: 40,
    steps: [
      { name: "vpc", status: "succeeded", attempts: 1, started_at: null, finished_at: null, detail: "" },
      { name: "subnets", status: "running", attempts: 1, started_at: null, finished_at: null, detail: "" },
    ],
    error: null,
    attempts: 1,
    created_at: "2026-12-07T10:01:00Z",
    started_at: null,
    finished_at: null,
    ...overrides,
  } as Operation;
}

const PLANE_PATH = /^\/api\/v1\/orgs\/(acme|globex)\/compute-planes\/cp_1$/;

describe("compute planes list", () => {
  it("lists planes with their status and links to each", async () => {
    fakeApi([on("GET", "/api/v1/orgs/acme/compute-planes", { body: { results: [plane()], next: null } })]);
    renderConsole("/orgs/acme/compute-planes");
    const link = await screen.findByRole("link", { name: "analytics" });
    expect(link).toHaveAttribute("href", "/orgs/acme/compute-planes/cp_1");
    const row = link.closest("tr") as HTMLElement;
    expect(within(row).getByTestId("status")).toHaveTextContent("degraded");
    expect(row).toHaveTextContent("2 finding(s)");
  });

  it("has an empty state", async () => {
    fakeApi([on("GET", "/api/v1/orgs/acme/compute-planes", { body: { results: [], next: null } })]);
    renderConsole("/orgs/acme/compute-planes");
    expect(await screen.findByText(/No compute planes yet/)).toBeInTheDocument();
  });
});

describe("a degraded compute plane", () => {
  it("shows the findings as sentences, and Repair starts an operation whose progress is shown", async () => {
    const user = userEvent.setup();
    let current = plane();
    const calls = fakeApi([
      on("GET", PLANE_PATH, () => ({ body: current })),
      on("POST", "/api/v1/orgs/acme/compute-planes/cp_1/repair", () => {
        current = plane({ status: "updating", operation: { id: "op_9", status: "queued", progress: 0 } });
        return { status: 202, body: current };
      }),
      on("GET", "/api/v1/orgs/acme/operations/op_9", { body: operation() }),
    ]);
    renderConsole("/orgs/acme/compute-planes/cp_1");
    expect(await screen.findByRole("heading", { level: 1, name: /analytics/ })).toBeInTheDocument();
    expect(screen.getByText(FINDING)).toBeInTheDocument();
    expect(screen.getByText("The subnet subnet-1 no longer exists.")).toBeInTheDocument();
    const trail = screen.getByRole("navigation", { name: "Breadcrumb" });
    expect(within(trail).getByRole("link", { name: "Compute planes" })).toHaveAttribute("href", "/orgs/acme/compute-planes");

    await user.click(screen.getByRole("button", { name: "Repair" }));

    const progress = await screen.findByRole("region", { name: "Operation progress" });
    await waitFor(() => expect(within(progress).getByRole("progressbar")).toHaveAttribute("value", "40"));
    expect(progress).toHaveTextContent("computeplane.repair");
    expect(progress).toHaveTextContent("subnets");
    expect(screen.queryByRole("button", { name: "Repair" })).toBeNull(); // the plane is updating now
    expect(calls.filter((c) => c.method === "POST").map((c) => c.path)).toEqual([
      "/api/v1/orgs/acme/compute-planes/cp_1/repair",
    ]);
  });

  it("shows the API's refusal of a repair", async () => {
    const user = userEvent.setup();
    fakeApi([
      on("GET", PLANE_PATH, { body: plane() }),
      on("POST", "/api/v1/orgs/acme/compute-planes/cp_1/repair", {
        status: 409,
        body: { title: "Conflict.", status: 409, detail: "The cloud account is unusable: re-verify it first." },
      }),
    ]);
    renderConsole("/orgs/acme/compute-planes/cp_1");
    await user.click(await screen.findByRole("button", { name: "Repair" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("The cloud account is unusable: re-verify it first.");
  });

  it("offers a viewer no Repair button", async () => {
    fakeApi([on("GET", PLANE_PATH, { body: plane() })]);
    renderConsole("/orgs/globex/compute-planes/cp_1");
    expect(await screen.findByText(FINDING)).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "Repair" })).toBeNull();
  });

  it("a failed operation shows its error and a Retry button", async () => {
    const user = userEvent.setup();
    let op = operation({
      status: "failed",
      error: { code: "aws", message: "CreateVpc was throttled 5 times." },
      steps: [{ name: "vpc", status: "failed", attempts: 5, started_at: null, finished_at: null, detail: "" }],
    });
    const calls = fakeApi([
      on("GET", PLANE_PATH, { body: plane({ status: "failed", findings: [], operation: { id: "op_9", status: "failed", progress: 10 } }) }),
      on("GET", "/api/v1/orgs/acme/operations/op_9", () => ({ body: op })),
      on("POST", "/api/v1/orgs/acme/operations/op_9/retry", () => {
        op = operation({ status: "queued", progress: 10 });
        return { status: 202, body: op };
      }),
    ]);
    renderConsole("/orgs/acme/compute-planes/cp_1");
    expect(await screen.findByText("CreateVpc was throttled 5 times.")).toBeInTheDocument();
    await user.click(screen.getByRole("button", { name: "Retry" }));
    await waitFor(() => expect(screen.queryByRole("button", { name: "Retry" })).toBeNull());
    expect(calls.some((c) => c.method === "POST" && c.path.endsWith("/operations/op_9/retry"))).toBe(true);
  });

  it("an unknown plane shows the API's not-found answer", async () => {
    fakeApi([]);
    renderConsole("/orgs/acme/compute-planes/cp_nope");
    expect(await screen.findByRole("alert")).toHaveTextContent("Not found.");
  });
});

describe("pollDelay", () => {
  it("starts at a second and backs off to five", () => {
    expect([1, 2, 3, 4, 5, 10].map(pollDelay)).toEqual([1000, 1500, 2250, 3375, 5000, 5000]);
  });
});
