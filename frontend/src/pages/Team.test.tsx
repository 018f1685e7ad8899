import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";

import type { Token } from "../api/client";
import { fakeApi, on, renderConsole } from "../testing/fakeApi";

function token(overrides: Partial<Token> = {}): Token {
  return {
    id: "tok_1",
    name: "ci",
    role: "member",
    prefix: "lpt_ab12",
    created_by: "usr_1",
    created_at: "2026-12-01T10:00:00Z",
    expires_at: "2027-03-01T10:00:00Z",
    last_used_at: null,
    revoked_at: null,
    ...overrides,
  } as Token;
}

const MEMBERS = { results: [{ id: "usr_1", email: "dana@example.com", name: "Dana", role: "owner", joined_at: "2026-12-01T10:00:00Z" }], next: null };

describe("members & tokens", () => {
  it("creates a token, shows its secret once, and revokes after confirming", async () => {
    const user = userEvent.setup();
    let tokens: Token[] = [];
    const calls = fakeApi([
      on("GET", "/api/v1/orgs/acme/members", { body: MEMBERS }),
      on("GET", "/api/v1/orgs/acme/tokens", () => ({ body: { results: tokens, next: null } })),
      on("POST", "/api/v1/orgs/acme/tokens", (call) => {
        const { name, role } = call.body as { name: string; role: Token["role"] };
        tokens = [token({ name, role })];
        return { status: 201, body: { ...tokens[0], token: "lpt_ab12_secret" } };
      }),
      on("DELETE", "/api/v1/orgs/acme/tokens/tok_1", () => {
        tokens = [token({ revoked_at: "2026-12-07T11:00:00Z" })];
        return { status: 204 };
      }),
    ]);
    renderConsole("/orgs/acme/members");
    expect(await screen.findByRole("cell", { name: "dana@example.com" })).toBeInTheDocument();
    const form = screen.getByRole("form", { name: "New token" });
    await user.type(within(form).getByLabelText("Name"), "ci");
    await user.selectOptions(within(form).getByLabelText("Role"), "member");
    const days = within(form).getByLabelText("Expires in days");
    await user.clear(days);
    await user.type(days, "120");
    expect(days).toHaveAccessibleDescription("1 to 90 days.");
    await user.clear(days);
    await user.type(days, "30");
    await user.click(within(form).getByRole("button", { name: "Create token" }));

    expect(await screen.findByTestId("token-secret")).toHaveTextContent("lpt_ab12_secret");
    expect(calls.find((c) => c.method === "POST")?.body).toEqual({ name: "ci", role: "member", expires_in_days: 30 });
    const row = (await screen.findByRole("cell", { name: "lpt_ab12…" })).closest("tr") as HTMLElement;
    await user.click(within(row).getByRole("button", { name: "Revoke…" }));
    await user.click(within(row).getByRole("button", { name: "Revoke ci" }));
    await waitFor(() => expect(within(row).getByText("revoked")).toBeInTheDocument());
  });

  it("a viewer sees tokens but no create or revoke controls", async () => {
    fakeApi([
      on("GET", "/api/v1/orgs/globex/members", { body: MEMBERS }),
      on("GET", "/api/v1/orgs/globex/tokens", { body: { results: [token()], next: null } }),
    ]);
    renderConsole("/orgs/globex/members");
    expect(await screen.findByRole("cell", { name: "lpt_ab12…" })).toBeInTheDocument();
    expect(screen.queryByRole("form", { name: "New token" })).toBeNull();
    expect(screen.queryByRole("button", { name: /Revoke/ })).toBeNull();
  });
});

describe("audit log", () => {
  it("lists events and filters them", async () => {
    const user = userEvent.setup();
    const event = (id: string, action: string) => ({
      id,
      actor: { label: "dana@example.com", user: "usr_1" },
      action,
      target: { type: "cluster", id: "cl_1" },
      data: {},
      source_ip: null,
      created_at: "2026-12-07T10:00:00Z",
    });
    fakeApi([
      on("GET", "/api/v1/orgs/acme/audit-events", {
        body: { results: [event("ev_1", "cluster.resize_requested"), event("ev_2", "token.created")], next: null },
      }),
    ]);
    renderConsole("/orgs/acme/audit-events");
    expect(await screen.findByText("cluster.resize_requested")).toBeInTheDocument();
    await user.type(screen.getByLabelText("Filter by action, actor or target"), "token");
    expect(screen.queryByText("cluster.resize_requested")).toBeNull();
    expect(screen.getByText("token.created")).toBeInTheDocument();
  });
});
