import type { RouteObject } from "react-router";

import { CatalogPage, CatalogsPage } from "../pages/Catalogs";
import { CloudAccountPage, CloudAccountsPage, NewCloudAccountPage } from "../pages/CloudAccounts";
import { ClusterPage, ClustersPage } from "../pages/Clusters";
import { ComputePlanePage, ComputePlanesPage } from "../pages/ComputePlanes";
import { BillingPage } from "../pages/Billing";
import { Overview } from "../pages/Overview";
import { AuditLogPage, MembersPage } from "../pages/Team";
import { SectionPage } from "../pages/SectionPage";
import { AppFrame, type Crumb, Home, OrgLayout } from "./Layout";
import { NotFound } from "./NotFound";
import { RouteError } from "./RouteError";
import { SECTIONS } from "./sections";

const crumb = (label: string | ((p: Record<string, string | undefined>) => string)): Crumb => ({
  crumb: typeof label === "string" ? () => label : label,
});

// Screens that exist; every other section shows what it will be and where the API has it.
const BUILT: Record<string, RouteObject[]> = {
  "cloud-accounts": [
    { index: true, element: <CloudAccountsPage /> },
    { path: "new", element: <NewCloudAccountPage />, handle: crumb("Connect") },
    { path: ":id", element: <CloudAccountPage />, handle: crumb((p) => p.id ?? "") },
  ],
  clusters: [
    { index: true, element: <ClustersPage /> },
    { path: ":id", element: <ClusterPage />, handle: crumb((p) => p.id ?? "") },
  ],
  catalogs: [
    { index: true, element: <CatalogsPage /> },
    { path: ":id", element: <CatalogPage />, handle: crumb((p) => p.id ?? "") },
  ],
  billing: [{ index: true, element: <BillingPage /> }],
  members: [{ index: true, element: <MembersPage /> }],
  "audit-events": [{ index: true, element: <AuditLogPage /> }],
  "compute-planes": [
    { index: true, element: <ComputePlanesPage /> },
    { path: ":id", element: <ComputePlanePage />, handle: crumb((p) => p.id ?? "") },
  ],
};

export const routes: RouteObject[] = [
  {
    path: "/",
    element: <AppFrame />,
    errorElement: <RouteError />,
    children: [
      { index: true, element: <Home /> },
      {
        path: "orgs/:org",
        element: <OrgLayout />,
        handle: crumb((p) => p.org ?? ""),
        errorElement: <RouteError />,
        children: [
          { index: true, element: <Overview /> },
          ...SECTIONS.filter((s) => s.path !== "").map(
            (s): RouteObject => ({
              path: s.path,
              handle: crumb(s.title),
              children: BUILT[s.path] ?? [{ index: true, element: <SectionPage section={s} /> }],
            }),
          ),
          { path: "*", element: <NotFound /> },
        ],
      },
      {
        path: "*",
        element: (
          <main className="content">
            <NotFound />
          </main>
        ),
      },
    ],
  },
];
