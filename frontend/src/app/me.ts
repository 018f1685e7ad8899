import { useQuery } from "@tanstack/react-query";

import { fetchMe, fetchOrganization } from "../api/client";

export const meQuery = { queryKey: ["me"], queryFn: fetchMe, staleTime: 60_000 } as const;

export function useMe() {
  return useQuery(meQuery);
}

export function useOrganization(org: string) {
  return useQuery({ queryKey: ["orgs", org], queryFn: () => fetchOrganization(org) });
}

/** The user's role in an org, from /me (no extra request); null when not a member. */
export function useRole(org: string): string | null {
  const { data } = useMe();
  return data?.memberships.find((m) => m.org === org)?.role ?? null;
}

const ADMIN_ROLES = new Set(["owner", "admin"]);

/** Whether the role may change infrastructure (the API's ADMIN_WRITES); the API still decides. */
export function canAdminister(role: string | null): boolean {
  return role !== null && ADMIN_ROLES.has(role);
}

/** Whether the role may change clusters, catalogs and caches (the API's default: member and up). */
export function canOperate(role: string | null): boolean {
  return role !== null && role !== "viewer";
}
