// The onboarding wizard in Chromium: a new owner connects a cloud account step by step, plays
// the customer (the test creates the role in the emulator with the external ID the page shows),
// sees a failed verification's checks with their sentences, and re-verifies to "verified".
//
// Environment: LAKEPLANE_BASE_URL, LAKEPLANE_E2E_EMAIL, LAKEPLANE_E2E_PASSWORD,
// LAKEPLANE_E2E_ARTIFACTS, CHROMIUM_PATH, LAKEPLANE_E2E_ORG, LAKEPLANE_E2E_AWS_ACCOUNT (12 digits).
// Asks the driver: "customer-role <external id>" → the role ARN.

import assert from "node:assert/strict";

import { ask, checkAccessibility, inBrowser, required, signIn, step } from "./lib.mjs";

const baseUrl = required("LAKEPLANE_BASE_URL").replace(/\/$/, "");
const org = required("LAKEPLANE_E2E_ORG");
const awsAccount = required("LAKEPLANE_E2E_AWS_ACCOUNT");
const artifacts = required("LAKEPLANE_E2E_ARTIFACTS");

await inBrowser("onboarding e2e", artifacts, async (page, shot) => {
  await signIn(page, baseUrl, required("LAKEPLANE_E2E_EMAIL"), required("LAKEPLANE_E2E_PASSWORD"), `/orgs/${org}`);

  step("the empty cloud accounts page offers to connect one");
  await page.getByRole("navigation", { name: "Sections" }).getByRole("link", { name: "Cloud accounts" }).click();
  await page.getByText("No cloud accounts yet").waitFor();
  await page.getByRole("link", { name: "Connect a cloud account" }).click();
  await page.getByRole("heading", { level: 1, name: "Connect a cloud account" }).waitFor();

  step("the AWS account ID is checked as it is typed");
  await page.getByLabel("Name").fill("Sandbox");
  const id = page.getByLabel("AWS account ID");
  await id.fill(awsAccount.slice(0, 5));
  await page.getByText("12 digits (5 so far).").waitFor();
  assert.equal(await page.getByRole("button", { name: "Continue" }).isDisabled(), true);
  await id.fill(awsAccount);
  await page.getByRole("button", { name: "Continue" }).click();

  step("step 2 shows the quick-create link and the Terraform snippet with this account's external ID");
  await page.waitForURL(new RegExp(`/orgs/${org}/cloud-accounts/acct_[0-9a-z]+$`));
  const externalId = (await page.getByTestId("external-id").textContent()).trim();
  assert.ok(externalId.length >= 32, "an external ID is shown");
  const quick = await page.getByRole("link", { name: /quick-create stack/ }).getAttribute("href");
  assert.ok(quick.includes(externalId), "the quick-create link carries the external ID");
  await page.getByTestId("terraform-snippet").filter({ hasText: externalId }).waitFor();
  await page.getByRole("button", { name: "Copy external ID" }).waitFor();
  await page.getByRole("button", { name: "Copy Terraform snippet" }).waitFor();
  await shot("onboarding-role.png");
  await checkAccessibility(page, "onboarding");

  step("a role that does not trust Lakeplane fails verification, each check with its sentence");
  const roleArn = await ask("customer-role", externalId);
  const wrongArn = roleArn.replace(/role\/.*$/, "role/not-the-lakeplane-role");
  await page.getByLabel("Role ARN").fill(wrongArn);
  await page.getByRole("button", { name: "Verify" }).click();
  const checks = page.getByRole("list", { name: "Checks" });
  await checks.locator(".check--failed").first().waitFor();
  await page.getByRole("heading", { level: 1 }).getByTestId("status").filter({ hasText: "failed" }).waitFor();
  const failed = (await checks.locator(".check--failed").first().textContent()).trim();
  assert.match(failed, /failed: .+/, "a failed check says what to do");
  await shot("onboarding-verify-failed.png");
  await checkAccessibility(page, "failed verification");

  step("the customer's real role passes on re-verify");
  await page.getByLabel("Role ARN").fill(roleArn);
  await page.getByRole("button", { name: "Re-verify" }).click();
  await page.getByRole("heading", { level: 1 }).getByTestId("status").filter({ hasText: "verified" }).waitFor();
  assert.equal(await checks.locator(".check--failed").count(), 0);
  assert.ok((await checks.locator(".check--ok").count()) > 0);
  await page.getByRole("link", { name: "create a compute plane" }).waitFor();
  await shot("onboarding-verified.png");

  step("the list shows the verified account");
  await page.getByRole("navigation", { name: "Breadcrumb" }).getByRole("link", { name: "Cloud accounts" }).click();
  await page.getByRole("row").filter({ hasText: awsAccount }).getByTestId("status").filter({ hasText: "verified" }).waitFor();
});
