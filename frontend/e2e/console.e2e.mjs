// Real-browser check of the console: Debian's Chromium driven by playwright-core against a
// running Lakeplane (tests/e2e/test_console_browser.py starts one on pytest-django's live_server).
//
// Environment:
//   LAKEPLANE_BASE_URL        e.g. http://127.0.0.1:8000
//   LAKEPLANE_E2E_EMAIL       a user who can sign in with a password
//   LAKEPLANE_E2E_PASSWORD
//   LAKEPLANE_E2E_ORGS        JSON list of the user's orgs in /me order:
//                             [{"slug", "name", "role", "operations": <count of operations>}]
//   LAKEPLANE_E2E_ARTIFACTS   directory for screenshots (created if missing)
//   CHROMIUM_PATH             defaults to /usr/bin/chromium
//
// Exits 0 when every check passed, 1 (with the failed check on stderr) otherwise.

import assert from "node:assert/strict";
import path from "node:path";

import { checkAccessibility, inBrowser, required, step, WAIT_MS } from "./lib.mjs";

const baseUrl = required("LAKEPLANE_BASE_URL").replace(/\/$/, "");
const email = required("LAKEPLANE_E2E_EMAIL");
const password = required("LAKEPLANE_E2E_PASSWORD");
const orgs = JSON.parse(required("LAKEPLANE_E2E_ORGS"));
const artifacts = required("LAKEPLANE_E2E_ARTIFACTS");
assert.ok(orgs.length >= 2, "the switcher check needs a user with at least two orgs");

async function expectOrgShown(page, org) {
  await page.getByTestId("org-name").filter({ hasText: org.name }).waitFor({ timeout: WAIT_MS });
  await page.getByTestId("org-role").filter({ hasText: org.role }).waitFor({ timeout: WAIT_MS });
  const select = page.getByRole("combobox", { name: "Organization" });
  assert.equal(await select.inputValue(), org.slug, "the switcher selects the org shown");
  const panel = page.getByRole("region", { name: "Recent operations" });
  if (org.operations === 0) {
    await panel.getByText("No operations yet").waitFor({ timeout: WAIT_MS });
  } else {
    await panel.locator("tbody tr").first().waitFor({ timeout: WAIT_MS });
    assert.equal(await panel.locator("tbody tr").count(), Math.min(org.operations, 10));
  }
}

// The wrong-password 200 and the 401 after sign-out are not console errors, so anything the
// browser console logs is a real problem (inBrowser fails the run on it).
await inBrowser("console e2e", artifacts, async (page) => {
  step("an anonymous visit to / lands on the sign-in page");
  await page.goto(`${baseUrl}/`);
  assert.equal(new URL(page.url()).pathname, "/login/");

  step("a wrong password is refused");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(`${password}-wrong`);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("alert").filter({ hasText: "didn't match" }).waitFor();

  step("signing in opens the console shell");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  // Sign-in returns to /, which opens the first org's overview at its own URL.
  await Promise.all([page.waitForURL(/\/orgs\/[^/]+$/), page.getByRole("button", { name: "Sign in" }).click()]);
  await page.getByTestId("user-email").filter({ hasText: email }).waitFor();
  assert.equal(await page.title(), "Lakeplane console");
  await page.getByRole("navigation", { name: "Sections" }).waitFor();

  step("the switcher lists every org, the first is shown");
  const select = page.getByRole("combobox", { name: "Organization" });
  const optionValues = await select.locator("option").evaluateAll((options) => options.map((o) => o.value));
  // /me does not promise an order, so compare as sets and take the order the page shows.
  assert.deepEqual([...optionValues].sort(), orgs.map((o) => o.slug).sort());
  const [first, second] = optionValues.map((slug) => orgs.find((o) => o.slug === slug));
  await expectOrgShown(page, first);

  step("switching org shows the other org and is remembered across reloads");
  await select.selectOption(second.slug);
  await expectOrgShown(page, second);
  assert.equal(await page.evaluate(() => localStorage.getItem("lakeplane.currentOrg")), second.slug);
  await page.reload();
  await expectOrgShown(page, second);
  await page.screenshot({ path: path.join(artifacts, "console.png"), fullPage: true });
  await checkAccessibility(page, "overview");

  step("switching back shows the first org again");
  await select.selectOption(first.slug);
  await expectOrgShown(page, first);
  await page.screenshot({ path: path.join(artifacts, "console-operations.png"), fullPage: true });

  step("the left navigation opens a section at a URL mirroring the API, and a reload shows it again");
  const nav = page.getByRole("navigation", { name: "Sections" });
  await nav.getByRole("link", { name: "Compute planes" }).click();
  await page.waitForURL(`${baseUrl}/orgs/${first.slug}/compute-planes`);
  await page.getByRole("heading", { level: 1, name: "Compute planes" }).waitFor();
  await page.reload();
  await page.getByRole("heading", { level: 1, name: "Compute planes" }).waitFor();
  assert.equal(await nav.getByRole("link", { name: "Compute planes" }).getAttribute("aria-current"), "page");
  await page.getByRole("navigation", { name: "Breadcrumb" }).getByRole("link", { name: first.slug }).waitFor();

  step("back and forward move between the views");
  await page.goBack();
  await expectOrgShown(page, first);
  await page.goForward();
  await page.getByRole("heading", { level: 1, name: "Compute planes" }).waitFor();

  step("an unknown path and an org the user is not in show the 404 page");
  await page.goto(`${baseUrl}/orgs/${first.slug}/no-such-section`);
  await page.getByRole("heading", { level: 1, name: "Not found" }).waitFor();
  await page.goto(`${baseUrl}/orgs/not-my-org/clusters`);
  await page.getByRole("heading", { level: 1, name: "Not found" }).waitFor();
  await page.screenshot({ path: path.join(artifacts, "not-found.png"), fullPage: true });
  await checkAccessibility(page, "not found");
  await page.goto(`${baseUrl}/orgs/${first.slug}`);
  await expectOrgShown(page, first);

  step("the API docs link opens Swagger UI");
  await Promise.all([page.waitForURL(`${baseUrl}/api/docs/`), page.getByRole("link", { name: "API docs" }).click()]);
  assert.match(await page.title(), /Lakeplane API/);
  await page.locator("#swagger-ui .information-container").getByText("Lakeplane API").first().waitFor();
  await page.locator("#swagger-ui .opblock").first().waitFor();
  await page.screenshot({ path: path.join(artifacts, "api-docs.png") });

  step("signing out ends the session");
  await page.goBack();
  await page.getByTestId("user-email").filter({ hasText: email }).waitFor();
  await Promise.all([page.waitForURL(/\/login\/$/), page.getByRole("button", { name: "Sign out" }).click()]);
  const me = await page.request.get(`${baseUrl}/api/v1/me`);
  assert.equal(me.status(), 401, "the API refuses the old session after sign-out");
  await page.goto(`${baseUrl}/`);
  assert.equal(new URL(page.url()).pathname, "/login/");

});
