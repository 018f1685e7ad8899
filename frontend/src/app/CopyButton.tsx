import { useState } from "react";

/** Copies `text`; says "Copied" for a moment (or that copying failed, so the user selects it). */
export function CopyButton({ text, label }: { text: string; label: string }) {
  const [state, setState] = useState<"idle" | "copied" | "failed">("idle");
  const copy = () => {
    navigator.clipboard.writeText(text).then(
      () => setState("copied"),
      () => setState("failed"),
    );
    window.setTimeout(() => setState("idle"), 2_000);
  };
  return (
    <button type="button" className="button-secondary" onClick={copy} aria-label={label}>
      {state === "copied" ? "Copied" : state === "failed" ? "Copy failed: select the text" : "Copy"}
    </button>
  );
}
