import { isRouteErrorResponse, useRouteError } from "react-router";

import { ApiError } from "../api/problem";
import { NotFound } from "./NotFound";
import { ProblemView } from "./ProblemView";

/** The router's error element: a 404 from the router or the API is the not-found page. */
export function RouteError() {
  const error = useRouteError();
  if ((isRouteErrorResponse(error) && error.status === 404) || (error instanceof ApiError && error.status === 404)) {
    return <NotFound />;
  }
  return (
    <section className="panel">
      <h1>Something went wrong</h1>
      <ProblemView error={error} />
    </section>
  );
}
