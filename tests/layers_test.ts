/**
 * The toolchain's layers (README, "Repository"): every import in tools/
 * goes down a layer or stays in its own folder, and core/ stays pure. The
 * import lines are read from the sources; a module that imports upward (or
 * sideways into a sibling folder of the same layer) fails this test by name.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize } from "node:path";
import { ROOT } from "../tools/paths.ts";

/**
 * Bottom to top. A module may import from lower layers and from its own
 * folder; folders that share a layer do not import each other.
 */
export const LAYERS: readonly { layer: number; folders: readonly string[]; what: string }[] = [
  { layer: 0, folders: ["linker", "tools/paths.ts"], what: "layout, generators, repository paths" },
  { layer: 1, folders: ["tools/core"], what: "pure: TAP/KTAP, classification, records, ELF" },
  { layer: 2, folders: ["tools/host"], what: "the host: tools, firmware, locks, addr2line" },
  {
    layer: 3,
    folders: ["tools/build", "tools/image", "tools/report", "tools/bench"],
    what: "the kernel build; boot images; the HTML report and the bench's charts",
  },
  { layer: 4, folders: ["tools/machines"], what: "the target interface and every target" },
  { layer: 5, folders: ["tools/run"], what: "one run, the matrix, configurations" },
  { layer: 3, folders: ["tools/bench"], what: "the bench's pure parts (compare.ts)" },
  { layer: 6, folders: ["tools/app"], what: "commands, command table, console" },
  { layer: 6, folders: ["tools/bench/linux"], what: "bench vs Linux: kernel, initramfs, boot" },
  { layer: 7, folders: ["tools/npm", "tools"], what: "entries: tools/*.ts, the npm package" },
];

/** What core/ may import besides itself and layer 0: nothing that does I/O. */
const CORE_PACKAGES = new Set(["node:path"]);

/** The folder entry of LAYERS a repository-relative file belongs to (the longest match). */
function placeOf(file: string): { layer: number; folder: string } | null {
  let best: { layer: number; folder: string } | null = null;
  for (const { layer, folders } of LAYERS) {
    for (const folder of folders) {
      // "tools" holds the entries themselves, not the folders below it.
      const inside = folder === "tools"
        ? dirname(file) === "tools"
        : file === folder || file.startsWith(folder + "/");
      if (inside && (best === null || folder.length > best.folder.length)) best = { layer, folder };
    }
  }
  return best;
}

/** The specifiers a module imports: static, re-exports, side-effect and dynamic imports. */
export function importsOf(source: string): string[] {
  const out: string[] = [];
  const patterns = [
    /^\s*(?:import|export)\b[^;"'`]*?\bfrom\s*["']([^"']+)["']/gm,
    /^\s*import\s*["']([^"']+)["']/gm,
    /\bimport\(\s*["']([^"']+)["']\s*\)/g,
  ];
  for (const re of patterns) for (const m of source.matchAll(re)) out.push(m[1]);
  return out;
}

/** Every rule an import breaks, as `file: imports spec (why)`; `files` maps paths to sources. */
export function layerViolations(files: ReadonlyMap<string, string>): string[] {
  const out: string[] = [];
  for (const [file, source] of files) {
    const from = placeOf(file);
    if (from === null) {
      out.push(`${file}: in no layer (add its folder to LAYERS)`);
      continue;
    }
    for (const spec of importsOf(source)) {
      if (!spec.startsWith(".")) {
        if (from.folder === "tools/core" && !CORE_PACKAGES.has(spec)) {
          out.push(`${file}: imports ${spec} (core/ is pure: no I/O)`);
        }
        continue;
      }
      const target = normalize(join(dirname(file), spec));
      const to = placeOf(target);
      if (to === null) {
        out.push(`${file}: imports ${spec} (${target} is in no layer)`);
      } else if (to.folder === from.folder) {
        continue;
      } else if (to.layer > from.layer) {
        out.push(`${file}: imports ${spec} (up from layer ${from.layer} to ${to.layer})`);
      } else if (to.layer === from.layer) {
        out.push(`${file}: imports ${spec} (sideways: ${from.folder} and ${to.folder})`);
      }
    }
  }
  return out;
}

function sources(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory()) { for (const [k, v] of sources(path)) out.set(k, v); }
    else if (e.name.endsWith(".ts")) out.set(path, readFileSync(join(ROOT, path), "utf8"));
  }
  return out;
}

Deno.test("layers: every import in tools/ and linker/ goes down a layer or stays in its folder", () => {
  const files = new Map([...sources("tools"), ...sources("linker")]);
  assert.ok(files.size > 50, `read ${files.size} modules`);
  assert.deepEqual(layerViolations(files), []);
});

Deno.test("layers: an upward, sideways or impure import is reported by name", () => {
  const files = new Map([
    ["tools/core/a.ts", 'import { x } from "../app/options.ts";\nimport { y } from "./b.ts";'],
    ["tools/core/b.ts", 'import { execa } from "execa";\nimport { join } from "node:path";'],
    ["tools/image/c.ts", 'export { z } from "../build/build.ts";'],
    ["tools/machines/d.ts", 'const m = await import("../run/run.ts");\nimport "../core/a.ts";'],
    ["tools/machines/lab/e.ts", 'import {\n  f,\n} from "../../run/configs.ts";'],
    ["tools/app/f.ts", 'import type { T } from "../machines/target.ts";'],
    ["tools/odd/g.ts", ""],
  ]);
  assert.deepEqual(layerViolations(files), [
    "tools/core/a.ts: imports ../app/options.ts (up from layer 1 to 6)",
    "tools/core/b.ts: imports execa (core/ is pure: no I/O)",
    "tools/image/c.ts: imports ../build/build.ts (sideways: tools/image and tools/build)",
    "tools/machines/d.ts: imports ../run/run.ts (up from layer 4 to 5)",
    "tools/machines/lab/e.ts: imports ../../run/configs.ts (up from layer 4 to 5)",
    "tools/odd/g.ts: in no layer (add its folder to LAYERS)",
  ]);
});
