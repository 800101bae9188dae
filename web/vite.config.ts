import { defineConfig } from "vite";

// Preact's JSX through esbuild (no Babel); hashed file names under assets/ (cached for a year by the
// local stack and by CloudFront), index.html revalidated on every load.
export default defineConfig({
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  build: {
    target: "es2022",
    outDir: "dist",
    assetsDir: "assets",
    sourcemap: false,
    modulePreload: { polyfill: false },
  },
  test: {
    include: ["test/**/*.test.ts"],
    environment: "node",
  },
} as never);
