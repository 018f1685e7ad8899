// The console's typed API client: openapi-fetch over the types generated from the control
// plane's OpenAPI schema (src/api/schema.d.ts, `npm run gen:api`).

import createClient, { type Middleware } from "openapi-fetch";

import { csrfHeaders } from "./csrf";
import { ApiError } from "./problem";
import type { components, paths } from "./schema";

export type Me = components["schemas"]["Me"];
export type Membership = components["schemas"]["MembershipSummary"];
export type Organization = components["schemas"]["Organization"];
export type Operation = components["schemas"]["Operation"];

const csrf: Middleware = {
  onRequest({ request }) {
    for (const [name, value] of Object.entries(csrfHeaders(request.method, document.cookie))) {
      request.headers.set(name, value);
    }
    return request;
  },
};

// Same origin as the console, so the session cookie goes along with every call. fetch is looked
// up per call (not captured at import), so component tests can answer with a fake API.
export const api = createClient<paths>({
  baseUrl: globalThis.location?.origin ?? "",
  credentials: "same-origin",
  fetch: (request: Request) => globalThis.fetch(request),
});
api.use(csrf);

interface Result<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

/** The response body, or an ApiError built from the problem+json the API answered with. */
export async function unwrap<T>(call: Promise<Result<T>>): Promise<T> {
  const { data, error, response } = await call;
  if (!response.ok || error !== undefined) throw new ApiError(response.status, error);
  return data as T;
}

export function fetchMe(): Promise<Me> {
  return unwrap(api.GET("/api/v1/me"));
}

export function fetchOrganization(org: string): Promise<Organization> {
  return unwrap(api.GET("/api/v1/orgs/{org}", { params: { path: { org } } }));
}

export async function fetchRecentOperations(org: string, limit = 10): Promise<Operation[]> {
  const page = await unwrap(
    api.GET("/api/v1/orgs/{org}/operations", { params: { path: { org }, query: { limit } } }),
  );
  return page.results;
}

/** Ends the Django session (LogoutView takes POST with the CSRF token only). */
export async function signOut(): Promise<void> {
  const response = await fetch("/logout/", {
    method: "POST",
    credentials: "same-origin",
    headers: csrfHeaders("POST", document.cookie),
    // LogoutView answers with a redirect to /login/; the caller navigates there itself.
    redirect: "manual",
  });
  if (response.type !== "opaqueredirect" && !response.ok) {
    throw new ApiError(response.status, null);
  }
}

export type ComputePlane = components["schemas"]["ComputePlane"];
export type Finding = components["schemas"]["Finding"];

// One page is enough for a console list today (the API caps a page at 100); the list says when
// there are more.
export interface Page<T> {
  results: T[];
  more: boolean;
}

export async function fetchComputePlanes(org: string): Promise<Page<ComputePlane>> {
  const page = await unwrap(
    api.GET("/api/v1/orgs/{org}/compute-planes", { params: { path: { org }, query: { limit: 100 } } }),
  );
  return { results: page.results, more: page.next !== null };
}

export function fetchComputePlane(org: string, id: string): Promise<ComputePlane> {
  return unwrap(api.GET("/api/v1/orgs/{org}/compute-planes/{id}", { params: { path: { org, id } } }));
}

export function repairComputePlane(org: string, id: string): Promise<ComputePlane> {
  return unwrap(api.POST("/api/v1/orgs/{org}/compute-planes/{id}/repair", { params: { path: { org, id } } }));
}

export function fetchOperation(org: string, id: string): Promise<Operation> {
  return unwrap(api.GET("/api/v1/orgs/{org}/operations/{id}", { params: { path: { org, id } } }));
}

export function retryOperation(org: string, id: string): Promise<Operation> {
  return unwrap(api.POST("/api/v1/orgs/{org}/operations/{id}/retry", { params: { path: { org, id } } }));
}

export type Cluster = components["schemas"]["Cluster"];

export async function fetchClusters(org: string): Promise<Page<Cluster>> {
  const page = await unwrap(
    api.GET("/api/v1/orgs/{org}/clusters", { params: { path: { org }, query: { limit: 100 } } }),
  );
  return { results: page.results, more: page.next !== null };
}

export function fetchCluster(org: string, id: string): Promise<Cluster> {
  return unwrap(api.GET("/api/v1/orgs/{org}/clusters/{id}", { params: { path: { org, id } } }));
}

export function resizeCluster(org: string, id: string, workers: number): Promise<Cluster> {
  return unwrap(
    api.POST("/api/v1/orgs/{org}/clusters/{id}/resize", { params: { path: { org, id } }, body: { workers } }),
  );
}

export type ClusterAction = "start" | "stop" | "restart";

export function clusterAction(org: string, id: string, action: ClusterAction): Promise<Cluster> {
  const params = { params: { path: { org, id } } };
  switch (action) {
    case "start":
      return unwrap(api.POST("/api/v1/orgs/{org}/clusters/{id}/start", params));
    case "stop":
      return unwrap(api.POST("/api/v1/orgs/{org}/clusters/{id}/stop", params));
    case "restart":
      return unwrap(api.POST("/api/v1/orgs/{org}/clusters/{id}/restart", params));
  }
}

export function deleteCluster(org: string, id: string): Promise<Cluster> {
  return unwrap(api.DELETE("/api/v1/orgs/{org}/clusters/{id}", { params: { path: { org, id } } }));
}

export type CloudAccount = components["schemas"]["CloudAccount"];
export type TerraformOnboarding = components["schemas"]["TerraformOnboarding"];

export async function fetchCloudAccounts(org: string): Promise<Page<CloudAccount>> {
  const page = await unwrap(
    api.GET("/api/v1/orgs/{org}/cloud-accounts", { params: { path: { org }, query: { limit: 100 } } }),
  );
  return { results: page.results, more: page.next !== null };
}

export function fetchCloudAccount(org: string, id: string): Promise<CloudAccount> {
  return unwrap(api.GET("/api/v1/orgs/{org}/cloud-accounts/{id}", { params: { path: { org, id } } }));
}

export function createCloudAccount(org: string, body: { name: string; aws_account_id: string }): Promise<CloudAccount> {
  return unwrap(api.POST("/api/v1/orgs/{org}/cloud-accounts", { params: { path: { org } }, body }));
}

export function fetchTerraformOnboarding(org: string, id: string): Promise<TerraformOnboarding> {
  return unwrap(
    api.GET("/api/v1/orgs/{org}/cloud-accounts/{id}/onboarding/terraform", { params: { path: { org, id } } }),
  );
}

export function verifyCloudAccount(org: string, id: string, roleArn: string): Promise<CloudAccount> {
  return unwrap(
    api.POST("/api/v1/orgs/{org}/cloud-accounts/{id}/verify", {
      params: { path: { org, id } },
      body: { role_arn: roleArn },
    }),
  );
}

export type Member = components["schemas"]["Member"];
export type Token = components["schemas"]["Token"];
export type IssuedToken = components["schemas"]["IssuedToken"];
export type Role = components["schemas"]["RoleEnum"];
export type AuditEvent = components["schemas"]["AuditEvent"];

export async function fetchMembers(org: string): Promise<Page<Member>> {
  const page = await unwrap(api.GET("/api/v1/orgs/{org}/members", { params: { path: { org }, query: { limit: 100 } } }));
  return { results: page.results, more: page.next !== null };
}

export async function fetchTokens(org: string): Promise<Page<Token>> {
  const page = await unwrap(api.GET("/api/v1/orgs/{org}/tokens", { params: { path: { org }, query: { limit: 100 } } }));
  return { results: page.results, more: page.next !== null };
}

export function createToken(
  org: string,
  body: { name: string; role: Role; expires_in_days: number | null },
): Promise<IssuedToken> {
  return unwrap(api.POST("/api/v1/orgs/{org}/tokens", { params: { path: { org } }, body }));
}

export async function revokeToken(org: string, id: string): Promise<void> {
  await unwrap(api.DELETE("/api/v1/orgs/{org}/tokens/{id}", { params: { path: { org, id } } }));
}

export async function fetchAuditEvents(org: string): Promise<Page<AuditEvent>> {
  const page = await unwrap(
    api.GET("/api/v1/orgs/{org}/audit-events", { params: { path: { org }, query: { limit: 100 } } }),
  );
  return { results: page.results, more: page.next !== null };
}

// The statement's JSON has no schema in the API (billing/documents.py as_json builds it); this
// is the part the console reads. Amounts are absent for roles that may not read money.
export interface StatementLine {
  cluster: { id: string; name: string };
  instance_type: string;
  role: string;
  purchase_option: string;
  node_hours: string;
  compute_unit_hours: string;
  amount_cents?: number;
}

export interface Statement {
  month: string;
  time_zone: string;
  status: "final" | "month_to_date";
  as_of: string;
  currency: string;
  lines: StatementLine[];
  subtotal_cents?: number;
  discount?: { percent: string; cents: number };
  credits_cents?: number;
  total_cents?: number;
  forecast_total_cents?: number | null;
  aws_estimate_cents?: number;
}

export async function fetchStatement(org: string, month: string): Promise<Statement> {
  const body = await unwrap(
    api.GET("/api/v1/orgs/{org}/billing/statements/{month}", { params: { path: { org, month } } }),
  );
  return body as unknown as Statement;
}

export function statementDownloadUrl(org: string, month: string, format: "csv" | "pdf"): string {
  return `/api/v1/orgs/${encodeURIComponent(org)}/billing/statements/${month}.${format}`;
}

export type Catalog = components["schemas"]["Catalog"];

export async function fetchCatalogs(org: string): Promise<Page<Catalog>> {
  const page = await unwrap(api.GET("/api/v1/orgs/{org}/catalogs", { params: { path: { org }, query: { limit: 100 } } }));
  return { results: page.results, more: page.next !== null };
}

export function fetchCatalog(org: string, id: string): Promise<Catalog> {
  return unwrap(api.GET("/api/v1/orgs/{org}/catalogs/{id}", { params: { path: { org, id } } }));
}

/** Attaching and detaching is the cluster's catalog list (PATCH replaces it). */
export function setClusterCatalogs(org: string, id: string, catalogs: string[]): Promise<Cluster> {
  return unwrap(api.PATCH("/api/v1/orgs/{org}/clusters/{id}", { params: { path: { org, id } }, body: { catalogs } }));
}
