// Builds what vitals-server embeds (dist/: the console's page, script and style, and
// the customer card) from console/, card/ and client/. The output is checked in, so the server builds with nothing but
// Rust; CI rebuilds it and fails when it differs from what is checked in.
import { build } from "esbuild";
import { copyFile, mkdir } from "node:fs/promises";

await mkdir("dist", { recursive: true });
await build({
  entryPoints: ["console/app.ts"],
  bundle: true,
  minify: true,
  format: "esm",
  target: "es2022",
  outfile: "dist/console.js",
  legalComments: "none",
  logLevel: "warning",
});
// The embeddable customer card: the custom element alone, for CRM pages elsewhere.
await build({
  entryPoints: ["card/card.ts"],
  bundle: true,
  minify: true,
  format: "esm",
  target: "es2022",
  outfile: "dist/card.js",
  legalComments: "none",
  logLevel: "warning",
});
await copyFile("console/index.html", "dist/console.html");
await copyFile("console/style.css", "dist/console.css");
