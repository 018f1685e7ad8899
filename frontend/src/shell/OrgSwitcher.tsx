import type { Membership } from "../api/client";

interface OrgSwitcherProps {
  memberships: readonly Membership[];
  current: string | null;
  onChange: (org: string) => void;
}

/** A select of the user's memberships; the current org is the selected option. */
export function OrgSwitcher({ memberships, current, onChange }: OrgSwitcherProps) {
  if (memberships.length === 0) {
    return <span className="org-switcher org-switcher--empty">No organizations</span>;
  }
  return (
    <label className="org-switcher">
      <span className="org-switcher__label">Organization</span>
      <select value={current ?? ""} onChange={(event) => onChange(event.target.value)}>
        {memberships.map((m) => (
          <option key={m.org} value={m.org}>
            {m.org} ({m.role})
          </option>
        ))}
      </select>
    </label>
  );
}
