import { cleanup, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";

import { fakeApi, on, renderConsole } from "../testing/fakeApi";
import { SECTIONS, switchedOrgPath } from "./sections";

const ACME = { id: "org_1", slug: "acme", name: "Acme Data", role: "owner", allow_non_expiring_tokens: false, created_at: "2026-12-01T10:00:00Z" };
const noOperations = on("GET", /^\/api\/v1\/orgs\/[^/]+\/operations$/, { body: { results: [], next: null } });

describe("switchedOrgPath", () => {
  it("keeps the section and drops another org's resource id", () => {
    expect(switchedOrgPath("/orgs/acme/clusters/cl_1", "globex")).toBe("/orgs/globex/clusters");
    expect(switchedOrgPath("/orgs/acme", "globex")).toBe("/orgs/globex");
    expect(switchedOrgPath("/orgs/acme/nonsense", "globex")).toBe("/orgs/globex");
  });
});

describe("routing", () => {
  it("sends / to the remembered org's overview", async () => {
    fakeApi([on("GET", "/api/v1/orgs/acme", { body: ACME }), noOperations]);
    const router = renderConsole("/");
    expect(await screen.findByRole("heading", { level: 1, name: "Acme Data" })).toBeInTheDocument();
    expect(router.state.location.pathname).toBe("/orgs/acme");
    expect(await screen.findByText(/No operations yet/)).toBeInTheDocument();
  });

  it("names every section in its heading and marks it current in the navigation", async () => {
    fakeApi([]);
    for (const section of SECTIONS.filter((s) => s.path !== "")) {
      renderConsole(`/orgs/acme/${section.path}`);
      await screen.findByRole("heading", { level: 1, name: section.title });
      const nav = screen.getByRole("navigation", { name: "Sections" });
      expect(within(nav).getByRole("link", { current: "page" })).toHaveTextContent(section.title);
      const trail = screen.getByRole("navigation", { name: "Breadcrumb" });
      expect(within(trail).getByRole("link", { name: "acme" })).toHaveAttribute("href", "/orgs/acme");
      cleanup();
    }
  });

  it("follows the navigation, and back returns to the previous page", async () => {
    const user = userEvent.setup();
    fakeApi([on("GET", "/api/v1/orgs/acme", { body: ACME }), noOperations]);
    const router = renderConsole("/orgs/acme");
    await screen.findByRole("heading", { level: 1, name: "Acme Data" });
    await user.click(screen.getByRole("link", { name: "Billing" }));
    expect(await screen.findByRole("heading", { level: 1, name: "Billing" })).toBeInTheDocument();
    expect(router.state.location.pathname).toBe("/orgs/acme/billing");
    await router.navigate(-1);
    expect(await screen.findByRole("heading", { level: 1, name: "Acme Data" })).toBeInTheDocument();
  });

  it("switching org keeps the section", async () => {
    const user = userEvent.setup();
    fakeApi([]);
    const router = renderConsole("/orgs/acme/billing");
    await screen.findByRole("heading", { level: 1, name: "Billing" });
    await user.selectOptions(screen.getByRole("combobox", { name: "Organization" }), "globex");
    await waitFor(() => expect(router.state.location.pathname).toBe("/orgs/globex/billing"));
    expect(localStorage.getItem("lakeplane.currentOrg")).toBe("globex");
  });

  it("shows the 404 page for an unknown path and for an org the user is not in", async () => {
    fakeApi([]);
    renderConsole("/orgs/acme/no-such-section");
    expect(await screen.findByRole("heading", { level: 1, name: "Not found" })).toBeInTheDocument();
    cleanup();
    renderConsole("/orgs/initech/clusters");
    expect(await screen.findByRole("heading", { level: 1, name: "Not found" })).toBeInTheDocument();
    expect(screen.getByText(/no such organization/)).toBeInTheDocument();
    expect(screen.queryByRole("navigation", { name: "Sections" })).toBeNull();
  });
});
