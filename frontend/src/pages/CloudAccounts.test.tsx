import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";

import type { CloudAccount } from "../api/client";
import { fakeApi, on, renderConsole } from "../testing/fakeApi";
import { awsAccountIdProblem } from "./CloudAccounts";

function account(overrides: Partial<CloudAccount> = {}): CloudAccount {
  return {
    id: "acct_1",
    name: "Production",
    aws_account_id: "123456789012",
    external_id: "lp-ext-abc123",
    role_arn: "",
    status: "pending_role",
    checks: [],
    onboarding: {
      quick_create_url: "https://console.aws.amazon.com/cloudformation/home#/stacks/quickcreate?param_ExternalId=lp-ext-abc123",
      trust_policy: {},
      permissions_policy: {},
    },
    operation: null,
    findings: [],
    last_checked_at: null,
    verified_at: null,
    created_at: "2026-12-07T10:00:00Z",
    ...overrides,
  } as CloudAccount;
}

const TERRAFORM = {
  module_source: "infra/modules/customer-role",
  variables: { external_id: "lp-ext-abc123" },
  tfvars: 'external_id = "lp-ext-abc123"\n',
  module_call: 'module "lakeplane_customer_role" {\n  external_id = "lp-ext-abc123"\n}\n',
};
const ACCOUNT = /^\/api\/v1\/orgs\/acme\/cloud-accounts\/acct_1$/;

describe("awsAccountIdProblem", () => {
  it("says what is wrong while typing", () => {
    expect(awsAccountIdProblem("")).toBeNull();
    expect(awsAccountIdProblem("12345")).toBe("12 digits (5 so far).");
    expect(awsAccountIdProblem("12345a")).toMatch(/Only digits/);
    expect(awsAccountIdProblem("123456789012")).toBeNull();
  });
});

describe("onboarding wizard", () => {
  it("creates the account, then shows the role's links with the external ID and verifies with every check", async () => {
    const user = userEvent.setup();
    let current = account();
    const calls = fakeApi([
      on("POST", "/api/v1/orgs/acme/cloud-accounts", () => ({ status: 201, body: current })),
      on("GET", ACCOUNT, () => ({ body: current })),
      on("GET", "/api/v1/orgs/acme/cloud-accounts/acct_1/onboarding/terraform", { body: TERRAFORM }),
      on("POST", "/api/v1/orgs/acme/cloud-accounts/acct_1/verify", (call) => {
        const arn = (call.body as { role_arn: string }).role_arn;
        // The first verification finds a missing permission, the second passes.
        const ok = current.checks.length > 0;
        current = account({
          role_arn: arn,
          status: ok ? "verified" : "failed",
          checks: [
            { name: "assume_role", ok: true, detail: "" },
            ok
              ? { name: "permissions", ok: true, detail: "" }
              : { name: "permissions", ok: false, detail: "The role cannot call ec2:CreateVpc: update the stack." },
          ],
        });
        return { status: 202, body: current };
      }),
    ]);
    const router = renderConsole("/orgs/acme/cloud-accounts/new");
    await screen.findByRole("heading", { level: 1, name: "Connect a cloud account" });
    const id = screen.getByLabelText("AWS account ID");
    await user.type(screen.getByLabelText("Name"), "Production");
    await user.type(id, "1234");
    expect(id).toHaveAccessibleDescription("12 digits (4 so far).");
    expect(screen.getByRole("button", { name: "Continue" })).toBeDisabled();
    await user.type(id, "56789012");
    await user.click(screen.getByRole("button", { name: "Continue" }));

    await waitFor(() => expect(router.state.location.pathname).toBe("/orgs/acme/cloud-accounts/acct_1"));
    expect(await screen.findByTestId("external-id")).toHaveTextContent("lp-ext-abc123");
    const quick = screen.getByRole("link", { name: /quick-create stack/ });
    expect(quick.getAttribute("href")).toContain("lp-ext-abc123");
    expect(await screen.findByTestId("terraform-snippet")).toHaveTextContent('module "lakeplane_customer_role"');
    expect(screen.getByRole("button", { name: "Copy Terraform snippet" })).toBeInTheDocument();

    await user.type(screen.getByLabelText("Role ARN"), "arn:aws:iam::123456789012:role/lakeplane");
    await user.click(screen.getByRole("button", { name: "Verify" }));
    const checks = await screen.findByRole("list", { name: "Checks" });
    expect(within(checks).getAllByRole("listitem").map((li) => li.textContent)).toEqual([
      "✓ assume_role passed",
      "✗ permissions failed: The role cannot call ec2:CreateVpc: update the stack.",
    ]);

    await user.click(screen.getByRole("button", { name: "Re-verify" }));
    await waitFor(() => expect(screen.getByRole("heading", { level: 1 })).toHaveTextContent("verified"));
    expect(screen.getByText(/create a compute plane/)).toBeInTheDocument();
    expect(calls.filter((c) => c.path.endsWith("/verify")).map((c) => c.body)).toEqual([
      { role_arn: "arn:aws:iam::123456789012:role/lakeplane" },
      { role_arn: "arn:aws:iam::123456789012:role/lakeplane" },
    ]);
  });

  it("shows the API's field errors next to the fields", async () => {
    const user = userEvent.setup();
    fakeApi([
      on("POST", "/api/v1/orgs/acme/cloud-accounts", {
        status: 409,
        body: { title: "Conflict.", status: 409, errors: { aws_account_id: ["This AWS account is already connected."] } },
      }),
    ]);
    renderConsole("/orgs/acme/cloud-accounts/new");
    await user.type(await screen.findByLabelText("Name"), "Again");
    await user.type(screen.getByLabelText("AWS account ID"), "123456789012");
    await user.click(screen.getByRole("button", { name: "Continue" }));
    await waitFor(() =>
      expect(screen.getByLabelText("AWS account ID")).toHaveAccessibleDescription("This AWS account is already connected."),
    );
  });

  it("lists accounts; a viewer gets no connect button", async () => {
    fakeApi([on("GET", "/api/v1/orgs/globex/cloud-accounts", { body: { results: [account({ status: "verified" })], next: null } })]);
    renderConsole("/orgs/globex/cloud-accounts");
    expect(await screen.findByRole("link", { name: "Production" })).toHaveAttribute("href", "/orgs/globex/cloud-accounts/acct_1");
    expect(screen.queryByRole("link", { name: "Connect a cloud account" })).toBeNull();
  });
});
