// The dashboard is served by the gateway itself (crates/rungate/src/api/dashboard.rs embeds
// dist/ in the binary), so the build is one small, hashed bundle with no source maps and no
// runtime dependencies on other origins.
import { defineConfig } from "vite";

export default defineConfig({
  base: "/",
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    assetsDir: "assets",
    sourcemap: false,
    target: "es2022",
    reportCompressedSize: false,
  },
  server: {
    // `npm run dev` talks to a gateway on :8080 for the API.
    proxy: { "/api": "http://127.0.0.1:8080" },
  },
});
