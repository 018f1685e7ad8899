import { render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";

import { ApiError } from "../api/problem";
import { FieldError, fieldErrorId, ProblemView } from "./ProblemView";

const invalid = new ApiError(422, {
  type: "https://lakeplane.dev/problems/validation",
  title: "Invalid input.",
  status: 422,
  detail: "Some fields are not valid.",
  errors: { workers: ["Ensure this value is less than or equal to 50."], name: ["Already taken."] },
});

describe("ProblemView", () => {
  it("shows the title, the detail and the field errors a form does not show itself", () => {
    render(<ProblemView error={invalid} shownFields={["workers"]} />);
    const alert = screen.getByRole("alert");
    expect(alert).toHaveTextContent("Invalid input.");
    expect(alert).toHaveTextContent("Some fields are not valid.");
    expect(alert).toHaveTextContent("name Already taken.");
    expect(alert).not.toHaveTextContent("less than or equal to 50");
  });

  it("puts a field's errors next to the field", () => {
    render(
      <>
        <input aria-label="Workers" aria-describedby={fieldErrorId("workers")} />
        <FieldError error={invalid} field="workers" />
      </>,
    );
    expect(screen.getByLabelText("Workers")).toHaveAccessibleDescription("Ensure this value is less than or equal to 50.");
  });

  it("says the network failed when the API never answered", () => {
    render(<ProblemView error={new TypeError("Failed to fetch")} />);
    expect(screen.getByRole("alert")).toHaveTextContent("Could not reach Lakeplane");
  });
});
