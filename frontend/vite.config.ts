import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";

// Django serves the build: STATIC_URL is /static/ and frontend/dist is a STATICFILES_DIRS entry,
// while console.py serves dist/index.html for the console's pages.
export default defineConfig({
  base: "/static/",
  plugins: [react()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: true,
  },
  test: {
    environment: "jsdom",
    include: ["src/**/*.test.{ts,tsx}"],
    setupFiles: ["./src/test-setup.ts"],
    // A bound for a slow machine, not a speed claim: a test walks several screens.
    testTimeout: 20_000,
  },
});
