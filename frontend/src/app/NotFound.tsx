import { Link } from "react-router";

export function NotFound({ what = "page" }: { what?: string }) {
  return (
    <section className="panel not-found">
      <h1>Not found</h1>
      <p>
        There is no such {what} here, or you are not a member of the organization it belongs to.
      </p>
      <p>
        <Link to="/">Back to the console</Link>
      </p>
    </section>
  );
}
