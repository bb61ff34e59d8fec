/** Paths of the repository the toolchain runs in. */
import { fileURLToPath } from "node:url";
import { join } from "node:path";

/** Repository root (the directory that holds deno.json). */
export const ROOT = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");
/** Generated output; never committed. */
export const BUILD_DIR = join(ROOT, "build");
/** Raw serial logs of kernel runs. */
export const LOG_DIR = join(BUILD_DIR, "logs");
/** Reports (JUnit) written by the test command. */
export const REPORT_DIR = join(BUILD_DIR, "reports");
/** The npm package (`deno task npm`, tools/npm/build.ts). */
export const NPM_DIR = join(BUILD_DIR, "npm");
