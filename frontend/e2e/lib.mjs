// What every browser script shares: Chromium through playwright-core, sign-in, screenshots, and
// the rule that the console's own pages log no errors.

import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { createInterface } from "node:readline";
import { tmpdir } from "node:os";
import path from "node:path";

import { chromium } from "playwright-core";

// Waits are for the browser and server to catch up, not assertions about speed.
export const WAIT_MS = 15_000;

export function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`${name} must be set`);
    process.exit(2);
  }
  return value;
}

export function step(message) {
  console.log(`• ${message}`);
}

/**
 * Runs `body(page, shot)` in a fresh headless Chromium; exits 1 with the failure (and a
 * screenshot of the page at that moment) when anything throws or the console logged errors.
 */
export async function inBrowser(name, artifacts, body) {
  const userDataDir = mkdtempSync(path.join(tmpdir(), "lakeplane-e2e-chromium-"));
  mkdirSync(artifacts, { recursive: true });
  const consoleErrors = [];
  let context;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
      headless: true,
      viewport: { width: 1280, height: 800 },
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    const page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(WAIT_MS);
    page.on("console", (msg) => {
      if (msg.type() === "error") consoleErrors.push(msg.text());
    });
    page.on("pageerror", (error) => consoleErrors.push(String(error)));
    const shot = (file) => page.screenshot({ path: path.join(artifacts, file), fullPage: true });
    await body(page, shot, consoleErrors);
    if (consoleErrors.length) throw new Error(`the browser console logged errors:\n${consoleErrors.join("\n")}`);
    console.log(`${name}: all checks passed`);
  } catch (error) {
    console.error(`${name} FAILED: ${error instanceof Error ? error.stack : error}`);
    if (consoleErrors.length) console.error(`browser console errors:\n${consoleErrors.join("\n")}`);
    const page = context?.pages()[0];
    if (page) {
      console.error(`page at failure: ${page.url()}`);
      await page.screenshot({ path: path.join(artifacts, `${name}-failure.png`), fullPage: true }).catch(() => {});
    }
    process.exitCode = 1;
  } finally {
    lines?.close();
    await context?.close();
    rmSync(userDataDir, { recursive: true, force: true });
  }
}

/** Signs in on /login/ and waits for the console's frame. */
export async function signIn(page, baseUrl, email, password, next = "/") {
  await page.goto(`${baseUrl}/login/?next=${encodeURIComponent(next)}`);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByTestId("user-email").filter({ hasText: email }).waitFor();
}

// Made on the first question and closed when the run ends, so an open stdin keeps no script alive.
let lines = null;
let answers = null;

/** Asks the pytest driver (tests/e2e/browser.py) for something only the server side can do. */
export async function ask(...words) {
  if (!answers) {
    lines = createInterface({ input: process.stdin });
    answers = lines[Symbol.asyncIterator]();
  }
  console.log(`ASK ${words.join(" ")}`);
  const { value, done } = await answers.next();
  if (done) throw new Error(`no answer to: ${words.join(" ")}`);
  return value.trim();
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

/** axe-core on the page as it is now: fails on any critical or serious violation, naming them. */
export async function checkAccessibility(page, name) {
  // Evaluated through the DevTools protocol, so the console's CSP (no inline scripts) allows it.
  await page.evaluate(axeSource);
  const result = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const { violations } = await axe.run(document, { resultTypes: ["violations"] });
    return violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(" ")) }));
  });
  const bad = result.filter((v) => v.impact === "critical" || v.impact === "serious");
  if (bad.length) {
    throw new Error(`axe: ${name} has ${bad.length} critical/serious violation(s):\n${JSON.stringify(bad, null, 2)}`);
  }
  step(`axe: ${name}: no critical or serious violations`);
}
