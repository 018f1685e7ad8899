// Billing, members & tokens and the audit log in Chromium: this month's statement with its lines
// and a CSV download, a token created (secret shown once) and revoked, and the audit log filtered
// to those token events.
//
// Environment: LAKEPLANE_BASE_URL, LAKEPLANE_E2E_ARTIFACTS, CHROMIUM_PATH, LAKEPLANE_E2E_EMAIL /
// _PASSWORD (an owner), LAKEPLANE_E2E_ORG (with a replayed month of usage).

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";

import { checkAccessibility, inBrowser, required, signIn, step } from "./lib.mjs";

const baseUrl = required("LAKEPLANE_BASE_URL").replace(/\/$/, "");
const org = required("LAKEPLANE_E2E_ORG");
const artifacts = required("LAKEPLANE_E2E_ARTIFACTS");

await inBrowser("team-billing e2e", artifacts, async (page, shot) => {
  await signIn(page, baseUrl, required("LAKEPLANE_E2E_EMAIL"), required("LAKEPLANE_E2E_PASSWORD"), `/orgs/${org}`);
  const nav = page.getByRole("navigation", { name: "Sections" });

  step("billing shows this month to date with a forecast and the lines by cluster");
  await nav.getByRole("link", { name: "Billing" }).click();
  const summary = page.getByRole("region", { name: "Summary" });
  await summary.getByText("Month to date").waitFor();
  assert.match(await summary.getByTestId("total").textContent(), /\d/);
  assert.match(await summary.getByTestId("forecast").textContent(), /\d/);
  assert.ok((await page.locator("tbody tr").count()) > 0, "the replayed month has lines");
  await shot("billing.png");
  await checkAccessibility(page, "billing");

  step("the CSV download is the statement's daily lines");
  const [download] = await Promise.all([page.waitForEvent("download"), summary.getByRole("link", { name: "Download CSV" }).click()]);
  const csvPath = path.join(artifacts, "statement.csv");
  await download.saveAs(csvPath);
  const csv = readFileSync(csvPath, "utf8");
  assert.ok(csv.startsWith("date,cluster_id,cluster_name,"), `a statement CSV: ${csv.slice(0, 80)}`);
  assert.ok(csv.trim().split("\n").length > 1, "with lines");

  step("a token is created, its secret shown once, and revoked");
  await nav.getByRole("link", { name: "Members & tokens" }).click();
  await page.getByRole("heading", { level: 1, name: "Members & tokens" }).waitFor();
  const form = page.getByRole("form", { name: "New token" });
  await form.getByLabel("Name").fill("ci-e2e");
  await form.getByLabel("Role").selectOption("member");
  await form.getByLabel("Expires in days").fill("30");
  await form.getByRole("button", { name: "Create token" }).click();
  const secret = (await page.getByTestId("token-secret").textContent()).trim();
  assert.match(secret, /^lpt_/);
  await shot("token-created.png");
  await checkAccessibility(page, "members & tokens");
  const me = await page.request.get(`${baseUrl}/api/v1/me`, { headers: { Authorization: `Bearer ${secret}` } });
  assert.equal(me.status(), 200, "the new token works");
  const row = page.getByRole("row").filter({ hasText: "ci-e2e" });
  await row.getByRole("button", { name: "Revoke…" }).click();
  await row.getByRole("button", { name: "Revoke ci-e2e" }).click();
  await row.getByText("revoked").waitFor();
  const after = await page.request.get(`${baseUrl}/api/v1/me`, { headers: { Authorization: `Bearer ${secret}` } });
  assert.equal(after.status(), 401, "the revoked token is refused");

  step("the audit log shows the token's creation and revocation");
  await nav.getByRole("link", { name: "Audit log" }).click();
  await page.getByLabel("Filter by action, actor or target").fill("token");
  await page.locator("tbody tr").first().waitFor();
  const actions = await page.locator("tbody tr td:nth-child(3)").allTextContents();
  assert.ok(actions.length >= 2 && actions.every((a) => a.includes("token")), `token events: ${actions}`);
  await shot("audit-log.png");
  await checkAccessibility(page, "audit log");
});
