// The compute plane screens in Chromium: a plane degraded by drift shows its findings and a
// Repair button; Repair starts an operation whose progress the page follows to the end.
//
// Environment: LAKEPLANE_BASE_URL, LAKEPLANE_E2E_EMAIL, LAKEPLANE_E2E_PASSWORD,
// LAKEPLANE_E2E_ARTIFACTS, CHROMIUM_PATH, and
//   LAKEPLANE_E2E_ORG        the org's slug
//   LAKEPLANE_E2E_PLANE      JSON {"id", "name", "finding"}: a degraded plane and one finding's sentence
//
// Asks the driver: "drive <operation id>" once the repair has started (the driver delivers its
// steps; the page follows them without a reload).

import assert from "node:assert/strict";

import { ask, checkAccessibility, inBrowser, required, signIn, step } from "./lib.mjs";

const baseUrl = required("LAKEPLANE_BASE_URL").replace(/\/$/, "");
const email = required("LAKEPLANE_E2E_EMAIL");
const password = required("LAKEPLANE_E2E_PASSWORD");
const org = required("LAKEPLANE_E2E_ORG");
const plane = JSON.parse(required("LAKEPLANE_E2E_PLANE"));
const artifacts = required("LAKEPLANE_E2E_ARTIFACTS");
// The repair runs the reconcilers against the emulator; this bounds the wait, not a speed claim.
const REPAIR_WAIT_MS = 90_000;

await inBrowser("compute-planes e2e", artifacts, async (page, shot) => {
  step("the compute planes list shows the plane as degraded");
  await signIn(page, baseUrl, email, password, `/orgs/${org}/compute-planes`);
  await page.getByRole("heading", { level: 1, name: "Compute planes" }).waitFor();
  const row = page.getByRole("row").filter({ has: page.getByRole("link", { name: plane.name }) });
  await row.getByTestId("status").filter({ hasText: "degraded" }).waitFor();
  await shot("compute-planes.png");
  await checkAccessibility(page, "compute planes");

  step("the plane's page states what drift found, in sentences, with a Repair button");
  await row.getByRole("link", { name: plane.name }).click();
  await page.waitForURL(`${baseUrl}/orgs/${org}/compute-planes/${plane.id}`);
  await page.getByRole("heading", { level: 1, name: plane.name }).waitFor();
  await page.getByText(plane.finding, { exact: true }).waitFor();
  const repair = page.getByRole("button", { name: "Repair" });
  await repair.waitFor();
  await shot("compute-plane-degraded.png");
  await checkAccessibility(page, "degraded compute plane");

  step("a reload of the deep link shows the same view");
  await page.reload();
  await page.getByText(plane.finding, { exact: true }).waitFor();

  step("Repair starts the operation and the page shows its progress");
  await repair.click();
  const progress = page.getByRole("region", { name: "Operation progress" });
  await progress.getByText("computeplane.repair").waitFor();
  await page.getByRole("heading", { level: 1, name: plane.name }).getByTestId("status").filter({ hasText: "updating" }).waitFor();
  assert.equal(await page.getByRole("button", { name: "Repair" }).count(), 0, "no second repair while one runs");
  const opId = (await progress.getByTestId("operation-id").textContent()).trim();
  assert.match(opId, /^op_/);
  await shot("compute-plane-repairing.png");
  assert.equal(await ask("drive", opId), "succeeded");

  step("without a reload, the page follows the operation to the end and the plane is ready");
  await progress
    .getByRole("heading")
    .getByTestId("status")
    .filter({ hasText: "succeeded" })
    .waitFor({ timeout: REPAIR_WAIT_MS });
  await page
    .getByRole("heading", { level: 1, name: plane.name })
    .getByTestId("status")
    .filter({ hasText: "ready" })
    .waitFor({ timeout: REPAIR_WAIT_MS });
  assert.equal(await page.getByText(plane.finding, { exact: true }).count(), 0, "the finding is gone");
  await shot("compute-plane-repaired.png");
  await checkAccessibility(page, "repaired compute plane");
});
