/// <reference types="vitest/config" />
import { defineConfig } from "vite";
import { VitePWA } from "vite-plugin-pwa";

// The homeserver serves dist/ at "/" of its client listener (homeserver/webclient/).
export default defineConfig({
  base: "/",
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  build: {
    target: "es2022",
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 2048,
  },
  worker: { format: "es" },
  // The crypto WebAssembly is loaded by URL from its own package; pre-bundling it in
  // the dev server serves the .wasm with the wrong MIME type.
  optimizeDeps: { exclude: ["@matrix-org/matrix-sdk-crypto-wasm"] },
  // `npx vite` while working on the client: the API goes to a homeserver of your own
  // (scripts/dev_server.py prints the address to put in HS_URL).
  server: {
    proxy: process.env.HS_URL
      ? { "/_matrix": { target: process.env.HS_URL, ws: true }, "/.well-known": process.env.HS_URL }
      : undefined,
  },
  plugins: [
    VitePWA({
      strategies: "injectManifest",
      srcDir: "src",
      filename: "sw.ts",
      injectRegister: false,
      manifest: false, // public/manifest.webmanifest is ours, linked from index.html
      injectManifest: {
        // The crypto WebAssembly (7.8 MB raw, about 2.1 MB gzipped) is precached too: an offline reload
        // must be able to decrypt what IndexedDB holds.
        maximumFileSizeToCacheInBytes: 16 * 1024 * 1024,
        globPatterns: ["**/*.{js,css,html,svg,png,wasm,webmanifest}"],
      },
    }),
  ],
  test: {
    environment: "happy-dom",
    include: ["tests/unit/**/*.test.ts"],
    setupFiles: ["tests/unit/setup.ts"],
  },
});
