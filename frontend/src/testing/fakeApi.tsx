// Component tests answer the console's HTTP calls at the network boundary (global fetch), so the
// real client, problem parsing, router and query cache all run. Each handler is one route of the
// API: method, path pattern, and the answer; calls are recorded for assertions.

import { QueryClientProvider } from "@tanstack/react-query";
import { render } from "@testing-library/react";
import { createMemoryRouter, RouterProvider } from "react-router";
import { afterEach, vi } from "vitest";

import { makeQueryClient } from "../app/queryClient";
import { routes } from "../app/routes";

export interface Call {
  method: string;
  path: string;
  body: unknown;
}

type Answer = { status?: number; body?: unknown } | ((call: Call, match: RegExpMatchArray) => { status?: number; body?: unknown });

export interface Handler {
  method: string;
  path: RegExp;
  answer: Answer;
}

export function on(method: string, path: string | RegExp, answer: Answer): Handler {
  const pattern = typeof path === "string" ? new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`) : path;
  return { method, path: pattern, answer };
}

export const ME = {
  user: { id: "usr_1", email: "dana@example.com", name: "Dana" },
  memberships: [
    { org: "acme", role: "owner" },
    { org: "globex", role: "viewer" },
  ],
};

export function fakeApi(handlers: Handler[]): Call[] {
  const calls: Call[] = [];
  const all = [...handlers, on("GET", "/api/v1/me", { body: ME })];
  vi.stubGlobal("fetch", async (input: Request) => {
    const url = new URL(input.url);
    const text = input.method === "GET" ? "" : await input.text();
    const call: Call = { method: input.method, path: url.pathname + url.search, body: text ? JSON.parse(text) : undefined };
    calls.push(call);
    for (const h of all) {
      const match = url.pathname.match(h.path);
      if (h.method === input.method && match) {
        const { status = 200, body } = typeof h.answer === "function" ? h.answer(call, match) : h.answer;
        const problem = status >= 400;
        return new Response(body === undefined ? null : JSON.stringify(body), {
          status,
          headers: { "Content-Type": problem ? "application/problem+json" : "application/json" },
        });
      }
    }
    return new Response(JSON.stringify({ title: "Not found.", status: 404 }), {
      status: 404,
      headers: { "Content-Type": "application/problem+json" },
    });
  });
  return calls;
}

afterEach(() => {
  vi.unstubAllGlobals();
});

/** The whole console at one URL, with a fresh query cache; returns the router to inspect. */
export function renderConsole(path: string) {
  const router = createMemoryRouter(routes, { initialEntries: [path] });
  render(
    <QueryClientProvider client={makeQueryClient()}>
      <RouterProvider router={router} />
    </QueryClientProvider>,
  );
  return router;
}
