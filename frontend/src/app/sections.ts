// The console's sections, in the left navigation's order. Each path mirrors the API's
// (/api/v1/orgs/{org}/<path>), so a console URL and the resource it shows read the same.

export interface Section {
  /** The path segment after /orgs/{org}/ ("" is the organization's overview). */
  path: string;
  /** The navigation label, and the page's main heading. */
  title: string;
}

export const SECTIONS: readonly Section[] = [
  { path: "", title: "Overview" },
  { path: "cloud-accounts", title: "Cloud accounts" },
  { path: "compute-planes", title: "Compute planes" },
  { path: "clusters", title: "Clusters" },
  { path: "catalogs", title: "Catalogs" },
  { path: "metastores", title: "Metastores" },
  { path: "caches", title: "Caches" },
  { path: "queries", title: "Queries" },
  { path: "billing", title: "Billing" },
  { path: "members", title: "Members & tokens" },
  { path: "audit-events", title: "Audit log" },
  { path: "settings", title: "Settings" },
];

export function orgPath(org: string, ...rest: string[]): string {
  const tail = rest.filter(Boolean).map(encodeURIComponent).join("/");
  return `/orgs/${encodeURIComponent(org)}${tail ? `/${tail}` : ""}`;
}

/**
 * Where the org switcher goes: the same section in the other org. A resource id belongs to one
 * org, so /orgs/a/clusters/cl_1 becomes /orgs/b/clusters, not a URL that would 404.
 */
export function switchedOrgPath(pathname: string, nextOrg: string): string {
  const match = /^\/orgs\/[^/]+\/?([^/]*)/.exec(pathname);
  const section = match?.[1] ?? "";
  const known = SECTIONS.some((s) => s.path === section);
  return orgPath(nextOrg, known ? section : "");
}
