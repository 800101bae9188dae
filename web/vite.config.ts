import { build, defineConfig, type Plugin, type Rollup } from "vite";

const SERVICE_WORKER = "src/push/sw.ts";

/** The service worker with all it imports, as one classic script (no chunks shared with the app). */
async function bundleServiceWorker(minify: boolean): Promise<string> {
  const result = await build({
    configFile: false,
    logLevel: "warn",
    publicDir: false,
    build: {
      write: false,
      target: "es2022",
      minify,
      sourcemap: false,
      lib: { entry: SERVICE_WORKER, formats: ["iife"], name: "parleyServiceWorker", fileName: () => "sw.js" },
    },
  });
  const [output] = (Array.isArray(result) ? result : [result]) as Rollup.RollupOutput[];
  return output.output[0].code;
}

/**
 * `/sw.js`: the service worker at the root (its scope is the whole app), under a fixed name (its URL is
 * its identity, so no hash; the local stack and CloudFront revalidate files outside assets/).
 */
function serviceWorker(): Plugin {
  return {
    name: "parley-service-worker",
    async generateBundle() {
      this.emitFile({ type: "asset", fileName: "sw.js", source: await bundleServiceWorker(true) });
    },
    configureServer(server) {
      server.middlewares.use("/sw.js", (_request, response, next) => {
        bundleServiceWorker(false).then((code) => {
          response.setHeader("content-type", "text/javascript; charset=utf-8");
          response.setHeader("cache-control", "no-cache");
          response.end(code);
        }, next);
      });
    },
  };
}

// Preact's JSX through esbuild (no Babel); hashed file names under assets/ (cached for a year by the
// local stack and by CloudFront), index.html revalidated on every load; sw.js beside it.
export default defineConfig({
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  plugins: [serviceWorker()],
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
