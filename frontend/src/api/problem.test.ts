import { describe, expect, it } from "vitest";

import { ApiError, errorMessage, formatProblem } from "./problem";

describe("formatProblem", () => {
  it("joins title and detail", () => {
    const body = { type: "about:blank", title: "Not found", status: 404, detail: "No such organization." };
    expect(formatProblem(body, 404)).toBe("Not found: No such organization.");
  });

  it("lists field errors after the detail", () => {
    const body = {
      title: "Invalid input",
      status: 422,
      detail: "Some fields are invalid.",
      errors: { name: ["This field is required."], "workers.count": ["Must be at least 1.", "Too big."] },
    };
    expect(formatProblem(body, 422)).toBe(
      "Invalid input: Some fields are invalid. (name: This field is required.; workers.count: Must be at least 1.; workers.count: Too big.)",
    );
  });

  it("shows non-field errors without a field name and drops ones that repeat the detail", () => {
    const body = {
      title: "Conflict",
      detail: "The compute plane still has clusters.",
      errors: { non_field_errors: ["The compute plane still has clusters.", "Delete cl_1 first."] },
    };
    expect(formatProblem(body, 409)).toBe("Conflict: The compute plane still has clusters. (Delete cl_1 first.)");
  });

  it("does not repeat a detail equal to the title", () => {
    expect(formatProblem({ title: "Not found", detail: "Not found" }, 404)).toBe("Not found");
  });

  it("falls back to the status for bodies that are not problems", () => {
    expect(formatProblem("<html>Bad Gateway</html>", 502)).toBe("Bad gateway (HTTP 502).");
    expect(formatProblem(undefined, 418)).toBe("Request failed (HTTP 418).");
  });
});

describe("ApiError and errorMessage", () => {
  it("carries the status, the problem and a readable message", () => {
    const error = new ApiError(403, { title: "Permission denied", detail: "Viewers cannot do this." });
    expect(error.status).toBe(403);
    expect(error.problem?.title).toBe("Permission denied");
    expect(errorMessage(error)).toBe("Permission denied: Viewers cannot do this.");
  });

  it("explains a network failure (fetch rejects with TypeError)", () => {
    expect(errorMessage(new TypeError("Failed to fetch"))).toMatch(/Could not reach Lakeplane/);
  });
});
