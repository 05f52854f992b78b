// Builds dwv (DICOM Web Viewer, GPL-3.0, from npm) into static/vendor/dwv/: one ES module with its
// dependencies (konva, jszip, magic-wand-tool) bundled in, its decoder workers beside it, and the licences.
// Run with `npm ci && npm run build:dwv` (or `make vendor-dwv`). Served by us: no CDN.
import { build } from "esbuild";
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";

const out = "static/vendor/dwv";
rmSync(out, { recursive: true, force: true });
mkdirSync(`${out}/assets/workers`, { recursive: true });

await build({
  stdin: { contents: "import * as dwv from 'dwv'; globalThis.dwv = dwv; export default dwv;", resolveDir: ".",
           loader: "js" },
  bundle: true,
  minify: true,
  format: "esm",
  target: "es2020",
  outfile: `${out}/dwv.bundle.js`,
  legalComments: "linked",
  logLevel: "info",
});
cpSync("node_modules/dwv/dist/assets/workers", `${out}/assets/workers`, {
  recursive: true, filter: (src) => !src.endsWith(".map"),
});
// The .map files are not shipped, so their references go too (collectstatic's manifest storage fails on them).
for (const name of readdirSync(`${out}/assets/workers`)) {
  const file = `${out}/assets/workers/${name}`;
  writeFileSync(file, readFileSync(file, "utf8").replace(/^\/\/# sourceMappingURL=.*$/gm, ""));
}
// GPL-3.0 section 6(d): the object code is served from our site, so the way to its Corresponding Source is
// served beside it (and the upstream tag kept available: we rebuild from the pinned npm release).
const sourceNotice = (dwvVersion) => `Emhana's DICOM viewer: dwv ${dwvVersion} (DICOM Web Viewer), free software under the GNU General
Public License version 3 (the full text is in LICENSES.txt beside this file, with the licences of the code
bundled with it: konva, jszip, magic-wand-tool, all MIT).

Corresponding source of dwv.bundle.js and assets/workers/:
  - dwv ${dwvVersion}: https://github.com/ivmartel/dwv/tree/v${dwvVersion} (npm: dwv@${dwvVersion})
  - how it is built: bookings/consult/build_viewer.mjs with esbuild (package.json, package-lock.json)
  - the page script that drives it, static/js/dicom-viewer.js, is licensed GPL-3.0-or-later and served
    unminified.

On request to the site's operator we send this source on a durable medium at no more than the cost of
sending it, for three years after we last served this build.
`;
const version = (name) => JSON.parse(readFileSync(`node_modules/${name}/package.json`, "utf8")).version;
const licences = [
  ["dwv", "node_modules/dwv/license.txt"],
  ["konva", "node_modules/konva/LICENSE"],
  ["jszip", "node_modules/jszip/LICENSE.markdown"],
  ["magic-wand-tool", "node_modules/magic-wand-tool/LICENSE.txt"],
];
let text = "Third-party code bundled in dwv.bundle.js and assets/workers/ (built by bookings/consult/build_viewer.mjs).\n";
for (const [name, file] of licences) {
  let body;
  try { body = readFileSync(file, "utf8"); } catch { body = `(see https://www.npmjs.com/package/${name})`; }
  text += `\n===== ${name} ${version(name)} =====\n\n${body}\n`;
}
writeFileSync(`${out}/LICENSES.txt`, text);
writeFileSync(`${out}/SOURCE.txt`, sourceNotice(version("dwv")));
console.log(`dwv ${version("dwv")} built into ${out}`);
