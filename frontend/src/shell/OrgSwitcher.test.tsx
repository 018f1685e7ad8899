import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { useState } from "react";
import { describe, expect, it } from "vitest";

import type { Membership } from "../api/client";
import { chooseOrg, CURRENT_ORG_KEY, loadRememberedOrg, rememberOrg } from "./currentOrg";
import { OrgSwitcher } from "./OrgSwitcher";

const memberships: Membership[] = [
  { org: "acme", role: "owner" },
  { org: "globex", role: "viewer" },
];

describe("chooseOrg", () => {
  it("keeps the remembered org while the user is still a member", () => {
    expect(chooseOrg(memberships, "globex")).toBe("globex");
  });

  it("falls back to the first membership when the remembered org is gone", () => {
    expect(chooseOrg(memberships, "initech")).toBe("acme");
    expect(chooseOrg(memberships, null)).toBe("acme");
  });

  it("has no org without memberships", () => {
    expect(chooseOrg([], "acme")).toBeNull();
  });
});

describe("remembering the org", () => {
  it("round-trips through localStorage", () => {
    expect(loadRememberedOrg()).toBeNull();
    rememberOrg("globex");
    expect(localStorage.getItem(CURRENT_ORG_KEY)).toBe("globex");
    expect(loadRememberedOrg()).toBe("globex");
  });

  it("survives storage that throws", () => {
    const broken = {
      getItem: () => {
        throw new Error("SecurityError");
      },
      setItem: () => {
        throw new Error("QuotaExceededError");
      },
    } as unknown as Storage;
    expect(loadRememberedOrg(broken)).toBeNull();
    expect(() => rememberOrg("acme", broken)).not.toThrow();
  });
});

// The switcher as the shell wires it: state lifted into the parent, choice remembered.
function Harness({ initial }: { initial: string | null }) {
  const [current, setCurrent] = useState(chooseOrg(memberships, initial));
  return (
    <>
      <OrgSwitcher
        memberships={memberships}
        current={current}
        onChange={(org) => {
          rememberOrg(org);
          setCurrent(org);
        }}
      />
      <output>{current}</output>
    </>
  );
}

describe("OrgSwitcher", () => {
  it("lists every membership with its role and selects the current org", () => {
    render(<Harness initial="globex" />);
    const select = screen.getByRole("combobox", { name: "Organization" });
    expect(select).toHaveValue("globex");
    const options = screen.getAllByRole("option").map((o) => o.textContent);
    expect(options).toEqual(["acme (owner)", "globex (viewer)"]);
  });

  it("switches org and remembers the choice", async () => {
    const user = userEvent.setup();
    render(<Harness initial={null} />);
    const select = screen.getByRole("combobox", { name: "Organization" });
    expect(select).toHaveValue("acme");

    await user.selectOptions(select, "globex");

    expect(select).toHaveValue("globex");
    expect(screen.getByRole("status")).toHaveTextContent("globex");
    expect(localStorage.getItem(CURRENT_ORG_KEY)).toBe("globex");
  });

  it("says so when the user has no organization", () => {
    render(<OrgSwitcher memberships={[]} current={null} onChange={() => undefined} />);
    expect(screen.queryByRole("combobox")).toBeNull();
    expect(screen.getByText("No organizations")).toBeInTheDocument();
  });
});
