import { useParams } from "react-router";

import type { Section } from "../app/sections";

/** A section whose screen is not built yet: it says so and names the API call that has the data. */
export function SectionPage({ section }: { section: Section }) {
  const { org = "" } = useParams();
  return (
    <>
      <h1>{section.title}</h1>
      <section className="panel placeholder">
        <p>
          This screen is not in the console yet. The API has it:{" "}
          <code>
            GET /api/v1/orgs/{org}/{section.path}
          </code>{" "}
          (see the <a href="/api/docs/">API docs</a>).
        </p>
      </section>
    </>
  );
}
