// How an API error reads in the console: the problem+json title as the heading, its detail as a
// sentence, and field errors next to the fields they name (forms use <FieldError>; anything a
// form does not show is listed under the problem so nothing the API said is lost).

import { ApiError, errorMessage, type Problem } from "../api/problem";

export function problemOf(error: unknown): Problem | null {
  return error instanceof ApiError ? error.problem : null;
}

export function fieldErrors(error: unknown, field: string): string[] {
  return problemOf(error)?.errors?.[field] ?? [];
}

export function fieldErrorId(field: string): string {
  return `field-error-${field}`;
}

/** The messages the API gave for one field, rendered under it (link it with aria-describedby). */
export function FieldError({ error, field }: { error: unknown; field: string }) {
  const messages = fieldErrors(error, field);
  if (messages.length === 0) return null;
  return (
    <span className="field-error" id={fieldErrorId(field)} role="alert">
      {messages.join(" ")}
    </span>
  );
}

interface ProblemViewProps {
  error: unknown;
  /** Fields a form shows next to its inputs; their errors are not repeated here. */
  shownFields?: readonly string[];
}

export function ProblemView({ error, shownFields = [] }: ProblemViewProps) {
  const problem = problemOf(error);
  if (!problem) {
    return (
      <div className="problem" role="alert">
        <p className="problem__title">{errorMessage(error)}</p>
      </div>
    );
  }
  const title = problem.title?.trim() || errorMessage(error);
  const detail = problem.detail?.trim();
  const other = Object.entries(problem.errors ?? {}).filter(([field]) => !shownFields.includes(field));
  return (
    <div className="problem" role="alert">
      <p className="problem__title">{title}</p>
      {detail && detail !== title && <p className="problem__detail">{detail}</p>}
      {other.length > 0 && (
        <ul className="problem__fields">
          {other.map(([field, messages]) => (
            <li key={field}>
              {field !== "non_field_errors" && <code>{field}</code>} {messages.join(" ")}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
