// API errors arrive as RFC 9457 problem+json:
// {"type", "title", "status", "detail", "errors": {field: [message]}}.
// This module turns them (and failures that never reached the API) into sentences for people.

export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  errors?: Record<string, string[]>;
}

export function isProblem(value: unknown): value is Problem {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.title === "string" || typeof v.detail === "string";
}

const STATUS_TEXT: Record<number, string> = {
  400: "Bad request",
  401: "Not signed in",
  403: "Not allowed",
  404: "Not found",
  409: "Conflict",
  422: "Invalid input",
  429: "Too many requests",
  500: "Server error",
  502: "Bad gateway",
  503: "Service unavailable",
  504: "Gateway timeout",
};

/** One readable message: "Title: detail" followed by any field errors as "field: message". */
export function formatProblem(body: unknown, status: number): string {
  if (!isProblem(body)) {
    const text = STATUS_TEXT[status] ?? "Request failed";
    return `${text} (HTTP ${status}).`;
  }
  const title = body.title?.trim() || STATUS_TEXT[status] || "Request failed";
  const detail = body.detail?.trim();
  let message = detail && detail !== title ? `${title}: ${detail}` : title;
  const fieldMessages = Object.entries(body.errors ?? {}).flatMap(([field, messages]) =>
    messages.map((m) => (field === "non_field_errors" ? m : `${field}: ${m}`)),
  );
  // Skip a field message that only repeats the detail (DRF often puts the same text in both).
  const extra = fieldMessages.filter((m) => m !== detail);
  if (extra.length > 0) message += ` (${extra.join("; ")})`;
  return message;
}

/** An error from the API, carrying its status and the parsed problem body when there is one. */
export class ApiError extends Error {
  readonly status: number;
  readonly problem: Problem | null;

  constructor(status: number, body: unknown) {
    super(formatProblem(body, status));
    this.name = "ApiError";
    this.status = status;
    this.problem = isProblem(body) ? body : null;
  }
}

/** A message for anything a request can throw: API errors, network failures, bugs. */
export function errorMessage(error: unknown): string {
  if (error instanceof ApiError) return error.message;
  if (error instanceof TypeError) return "Could not reach Lakeplane. Check your connection and try again.";
  if (error instanceof Error) return error.message;
  return String(error);
}
