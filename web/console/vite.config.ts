// Builds the console (index.html) and the API docs viewer (docs.html) into the Python package,
// gtvision/web/static/console, served by web/routes_ui.py under /static/console/.
// No inline script or style is emitted (strict CSP): the module preload polyfill is off.
import { resolve } from "node:path";
import { defineConfig } from "vitest/config";

export default defineConfig({
  base: "/static/console/",
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    outDir: resolve(import.meta.dirname, "../static/console"),
    emptyOutDir: true,
    target: "es2022",
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    reportCompressedSize: false,
    rollupOptions: {
      input: {
        index: resolve(import.meta.dirname, "index.html"),
        docs: resolve(import.meta.dirname, "docs.html"),
      },
    },
  },
  test: {
    environment: "happy-dom",
    include: ["tests/**/*.test.{ts,tsx}"],
  },
});
