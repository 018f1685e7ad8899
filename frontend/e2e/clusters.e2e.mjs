// Clusters in Chromium: the list and a running cluster's page (ready/desired workers, connection
// strings), resize with the bounds checked as typed, stop, the typed-name delete confirmation,
// a viewer who sees no buttons, and another organization's cluster URL showing 404.
//
// Environment: LAKEPLANE_BASE_URL, LAKEPLANE_E2E_ARTIFACTS, CHROMIUM_PATH,
//   LAKEPLANE_E2E_EMAIL / _PASSWORD (an owner), LAKEPLANE_E2E_VIEWER_EMAIL (same password),
//   LAKEPLANE_E2E_ORG, LAKEPLANE_E2E_CLUSTER (JSON {"id", "name", "workers", "max"}),
//   LAKEPLANE_E2E_FOREIGN_CLUSTER (a path to another org's cluster), LAKEPLANE_E2E_CATALOG (a
//   catalog's name, attached to the cluster on the way).
// Asks the driver: "drive <operation id>" → the operation's final status.

import assert from "node:assert/strict";

import { ask, checkAccessibility, inBrowser, required, signIn, step } from "./lib.mjs";

const baseUrl = required("LAKEPLANE_BASE_URL").replace(/\/$/, "");
const password = required("LAKEPLANE_E2E_PASSWORD");
const org = required("LAKEPLANE_E2E_ORG");
const cluster = JSON.parse(required("LAKEPLANE_E2E_CLUSTER"));
const artifacts = required("LAKEPLANE_E2E_ARTIFACTS");
const catalog = required("LAKEPLANE_E2E_CATALOG");

async function runOperation(page, kind) {
  const progress = page.getByRole("region", { name: "Operation progress" });
  await progress.getByRole("heading").filter({ hasText: kind }).waitFor();
  const opId = (await progress.getByTestId("operation-id").textContent()).trim();
  assert.equal(await ask("drive", opId), "succeeded");
  await progress.getByRole("heading").getByTestId("status").filter({ hasText: "succeeded" }).waitFor();
}

const heading = (page) => page.getByRole("heading", { level: 1 });

await inBrowser("clusters e2e", artifacts, async (page, shot) => {
  await signIn(page, baseUrl, required("LAKEPLANE_E2E_EMAIL"), password, `/orgs/${org}/clusters`);

  step("the list shows the running cluster with ready/desired workers");
  const row = page.getByRole("row").filter({ has: page.getByRole("link", { name: cluster.name }) });
  await row.getByTestId("status").filter({ hasText: "running" }).waitFor();
  await row.getByText(`${cluster.workers}/${cluster.workers}`).waitFor();
  await shot("clusters.png");
  await checkAccessibility(page, "clusters");

  step("the cluster's page shows its workers and a ready-to-copy connection string");
  await row.getByRole("link", { name: cluster.name }).click();
  await page.waitForURL(`${baseUrl}/orgs/${org}/clusters/${cluster.id}`);
  await page.getByTestId("workers-ready").filter({ hasText: `${cluster.workers}/${cluster.workers}` }).waitFor();
  assert.match(await page.getByTestId("connect-cli").textContent(), /^trino --server https?:\/\//);
  await page.getByRole("button", { name: "Copy JDBC URL" }).waitFor();

  step("a size outside the bounds is refused as it is typed; a valid resize runs to the new size");
  const workers = page.getByRole("spinbutton", { name: "Workers" });
  await workers.fill(String(cluster.max + 1));
  await page.getByText(`Between 1 and ${cluster.max} (the cluster's bounds).`).waitFor();
  assert.equal(await page.getByRole("button", { name: "Resize" }).isDisabled(), true);
  await shot("cluster-resize-invalid.png");
  await checkAccessibility(page, "cluster");
  const target = cluster.workers + 1;
  await workers.fill(String(target));
  await page.getByRole("button", { name: "Resize" }).click();
  await runOperation(page, "cluster.resize");
  await page.getByTestId("workers-ready").filter({ hasText: `${target}/${target}` }).waitFor();
  await shot("cluster-resized.png");

  step("a catalog is attached to the cluster from the catalog's page, with its propagation shown");
  await page.getByRole("navigation", { name: "Sections" }).getByRole("link", { name: "Catalogs" }).click();
  await page.getByRole("link", { name: catalog }).click();
  await page.getByText("Not attached to any cluster.").waitFor();
  await page.getByLabel("Cluster", { exact: true }).selectOption({ label: cluster.name });
  await page.getByRole("button", { name: "Attach" }).click();
  const propagation = page.getByRole("row").filter({ hasText: cluster.id });
  await propagation.getByTestId("status").waitFor();
  await page.getByRole("button", { name: `Detach from ${cluster.name}` }).waitFor();
  await shot("catalog-attached.png");
  await checkAccessibility(page, "catalog");
  await page.goBack();
  await page.goBack();
  await page.waitForURL(`${baseUrl}/orgs/${org}/clusters/${cluster.id}`);

  step("stop runs to stopped, and Start is offered");
  await page.getByRole("region", { name: "Actions" }).getByRole("button", { name: "Stop" }).click();
  await runOperation(page, "cluster.stop");
  await heading(page).getByTestId("status").filter({ hasText: "stopped" }).waitFor();
  await page.getByRole("region", { name: "Actions" }).getByRole("button", { name: "Start" }).waitFor();

  step("delete asks for the cluster's name first");
  await page.getByRole("button", { name: "Delete…" }).click();
  const confirm = page.getByRole("form", { name: "Confirm deletion" });
  const remove = confirm.getByRole("button", { name: `Delete ${cluster.name}` });
  await confirm.getByLabel("Cluster name").fill(cluster.name.slice(0, -1));
  assert.equal(await remove.isDisabled(), true);
  await confirm.getByLabel("Cluster name").fill(cluster.name);
  assert.equal(await remove.isDisabled(), false);
  await shot("cluster-delete-confirm.png");
  await confirm.getByRole("button", { name: "Cancel" }).click();

  step("another organization's cluster URL shows 404");
  await page.goto(`${baseUrl}${required("LAKEPLANE_E2E_FOREIGN_CLUSTER")}`);
  await page.getByRole("heading", { level: 1, name: "Not found" }).waitFor();

  step("a viewer sees the cluster but none of the buttons");
  await page.goto(`${baseUrl}/orgs/${org}`);
  await Promise.all([page.waitForURL(/\/login\/$/), page.getByRole("button", { name: "Sign out" }).click()]);
  await signIn(page, baseUrl, required("LAKEPLANE_E2E_VIEWER_EMAIL"), password, `/orgs/${org}/clusters/${cluster.id}`);
  await heading(page).getByTestId("status").filter({ hasText: "stopped" }).waitFor();
  assert.equal(await page.getByRole("region", { name: "Actions" }).count(), 0);
  assert.equal(await page.getByRole("button", { name: /Delete|Start|Stop|Resize/ }).count(), 0);
  await shot("cluster-viewer.png");
  await checkAccessibility(page, "cluster as a viewer");
});
