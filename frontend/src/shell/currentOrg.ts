// Which organization the console shows. The choice is remembered per browser, and falls back to
// the first membership when the remembered org is gone (left, deleted, or another user signed in).

import type { Membership } from "../api/client";

export const CURRENT_ORG_KEY = "lakeplane.currentOrg";

export function chooseOrg(memberships: readonly Membership[], remembered: string | null): string | null {
  if (remembered && memberships.some((m) => m.org === remembered)) return remembered;
  return memberships[0]?.org ?? null;
}

// Storage can be unavailable (privacy modes, quotas); the console works without remembering.
export function loadRememberedOrg(storage: Storage | undefined = globalThis.localStorage): string | null {
  try {
    return storage?.getItem(CURRENT_ORG_KEY) ?? null;
  } catch {
    return null;
  }
}

export function rememberOrg(org: string, storage: Storage | undefined = globalThis.localStorage): void {
  try {
    storage?.setItem(CURRENT_ORG_KEY, org);
  } catch {
    // Not remembering is fine; the next visit starts at the first membership.
  }
}
