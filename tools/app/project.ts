/**
 * A kernel project as the toolchain sees it: where its kernel sources are,
 * where its build goes, its address-space layout and its machine
 * configurations. A repository describes itself in {@link PROJECT_FILE}
 * (JSON, every path relative to the file's directory); every key is
 * optional, and the defaults are this repository's own layout:
 *
 * ```json
 * {
 *   "kernel": "kernel",
 *   "build": "build",
 *   "layout": "layout.json",
 *   "configs": "machines.json"
 * }
 * ```
 *
 * - `kernel`: the C and NASM sources (headers in `<kernel>/include`);
 * - `build`: the output directory (objects, `kernel.elf`, `logs/`, `reports/`);
 * - `layout`: a JSON object of {@link LayoutConfig} fields, each optional
 *   (addresses as strings such as `"0xffffffff80000000"`, since JSON numbers
 *   cannot hold them); omitted: the toolchain's layout (linker/layout.ts);
 * - `configs`: a JSON array of {@link MachineConfig}s that replaces the
 *   toolchain's table (run/configs.ts); omitted: that table.
 *
 * A kernel built by a build of its own (make, cargo, anything) names that
 * instead of `kernel` and `layout`:
 *
 * ```json
 * { "buildCommand": "make", "image": "build/kernel.elf", "append": "quiet", "initrd": "x.cpio" }
 * ```
 *
 * - `buildCommand`: run with `sh -c` in the file's directory before each
 *   test run; its output is shown as a build failure when it fails;
 * - `image`: the kernel image it makes (or a prebuilt one, without
 *   `buildCommand`): a Linux bzImage, a PVH ELF, a multiboot1 or multiboot2
 *   kernel (tools/core/boot_image.ts reads which);
 * - `append`, `initrd`: its command line and initial RAM disk (the command
 *   line's `--append` and `--initrd` take precedence).
 *
 * Source file names in diagnostics and reports are relative to the project
 * root: the file's directory, or, when the kernel sources lie outside it,
 * the directory that holds them.
 */
import { readFile, stat } from "node:fs/promises";
import { dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import process from "node:process";
import { DEFAULT_LAYOUT_CONFIG, type LayoutConfig } from "../../linker/layout.ts";
import { CONFIGS, type MachineConfig } from "../run/configs.ts";

/** The name of a project's config file. */
export const PROJECT_FILE = "ouroboros.config.json";

/** The config file as written. */
export interface ProjectFile {
  /** Kernel sources; default `kernel`. */
  kernel?: string;
  /** Build output; default `build`. */
  build?: string;
  /** A layout file (JSON); default: the toolchain's layout. */
  layout?: string;
  /** A file of machine configurations (JSON array); default: the toolchain's table. */
  configs?: string;
  /** A build command of the project's own (instead of our build). */
  buildCommand?: string;
  /** The kernel image it makes, or a prebuilt one. */
  image?: string;
  /** The image's kernel command line. */
  append?: string;
  /** The image's initial RAM disk. */
  initrd?: string;
}

/** A kernel image of the project's own: what {@link ProjectFile}'s image keys say, resolved. */
export interface ProjectImage {
  /** The image (absolute). */
  image: string;
  /** The command that makes it (run in {@link cwd}), or null for a prebuilt image. */
  buildCommand: string | null;
  /** The file's directory: where the command runs. */
  cwd: string;
  append: string;
  /** The initrd (absolute), or null. */
  initrd: string | null;
}

/** A project, every path resolved. */
export interface Project {
  /** The config file read, or null if none was found (every default then applies). */
  file: string | null;
  /** The repository root: source names are relative to it. */
  root: string;
  /** The kernel sources, relative to root. */
  kernelDir: string;
  /** The build output (absolute). */
  buildDir: string;
  /** The layout the kernel is built with. */
  layout: LayoutConfig;
  /** The layout file it came from, or null for the toolchain's layout. */
  layoutFile: string | null;
  /** The machine configurations tests and `start` can name. */
  configs: readonly MachineConfig[];
  /** The file they came from, or null for the toolchain's table. */
  configsFile: string | null;
  /** A kernel image of the project's own instead of our build, or null. */
  image: ProjectImage | null;
}

/** A config, layout or configurations file that cannot be used; the message says why. */
export class ProjectError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProjectError";
  }
}

const FILE_KEYS = ["kernel", "build", "layout", "configs", "image", "initrd"] as const;
/** Keys whose value is text, not a path: `append` may be empty. */
const TEXT_KEYS = ["buildCommand", "append"] as const;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

async function readJson(path: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    throw new ProjectError(`cannot read ${what} ${path}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ProjectError(`${what} ${path} is not JSON: ${(e as Error).message}`);
  }
}

/** Check the keys and types of a config file's contents. */
export function parseProjectFile(data: unknown, name = PROJECT_FILE): ProjectFile {
  if (!isRecord(data)) throw new ProjectError(`${name}: expected a JSON object`);
  const out: ProjectFile = {};
  for (const [k, v] of Object.entries(data)) {
    if ((TEXT_KEYS as readonly string[]).includes(k)) {
      if (typeof v !== "string" || (k === "buildCommand" && v.trim() === "")) {
        throw new ProjectError(
          `${name}: '${k}' must be ${k === "append" ? "a" : "a non-empty"} string`,
        );
      }
      out[k as keyof ProjectFile] = v;
      continue;
    }
    if (!(FILE_KEYS as readonly string[]).includes(k)) {
      const known = [...FILE_KEYS, ...TEXT_KEYS].join(", ");
      throw new ProjectError(`${name}: unknown key '${k}' (known: ${known})`);
    }
    if (typeof v !== "string" || v === "") {
      throw new ProjectError(`${name}: '${k}' must be a path (a non-empty string)`);
    }
    out[k as keyof ProjectFile] = v;
  }
  const image = ["buildCommand", "append", "initrd"].find((k) => k in out);
  if (image !== undefined && out.image === undefined) {
    throw new ProjectError(`${name}: '${image}' needs 'image' (the kernel image to run)`);
  }
  if (out.image !== undefined) {
    const ours = ["kernel", "layout"].find((k) => k in out);
    if (ours !== undefined) {
      throw new ProjectError(
        `${name}: '${ours}' is for a kernel built by our build; 'image' names one built otherwise`,
      );
    }
  }
  return out;
}

/**
 * A layout file's contents as a {@link LayoutConfig}: each field optional
 * (the default fills it), addresses as decimal or `0x` strings or safe
 * integers, counts and slots as integers. Unknown fields are refused.
 * Whether the layout can work is {@link deriveLayout}'s to say.
 */
export function parseLayoutJson(data: unknown, name = "layout"): LayoutConfig {
  if (!isRecord(data)) throw new ProjectError(`${name}: expected a JSON object`);
  const config: Record<string, bigint | number> = { ...DEFAULT_LAYOUT_CONFIG };
  for (const [k, v] of Object.entries(data)) {
    const def = (DEFAULT_LAYOUT_CONFIG as unknown as Record<string, unknown>)[k];
    if (def === undefined) {
      const known = Object.keys(DEFAULT_LAYOUT_CONFIG).join(", ");
      throw new ProjectError(`${name}: unknown field '${k}' (known: ${known})`);
    }
    if (typeof def === "bigint") {
      const ok = (typeof v === "string" && /^(0x[0-9a-f_]+|\d+)$/i.test(v)) ||
        (typeof v === "number" && Number.isSafeInteger(v));
      if (!ok) throw new ProjectError(`${name}: '${k}' must be an address ("0x..." or a number)`);
      config[k] = BigInt(typeof v === "string" ? v.replaceAll("_", "") : v);
    } else {
      if (typeof v !== "number" || !Number.isInteger(v)) {
        throw new ProjectError(`${name}: '${k}' must be an integer`);
      }
      config[k] = v;
    }
  }
  return config as unknown as LayoutConfig;
}

/** A layout as a layout file's JSON (addresses in hex): the inverse of {@link parseLayoutJson}. */
export function layoutToJson(config: LayoutConfig): Record<string, string | number> {
  return Object.fromEntries(
    Object.entries(config).map(([k, v]) => [k, typeof v === "bigint" ? `0x${v.toString(16)}` : v]),
  );
}

/** A configurations file's contents: a non-empty array of machine configurations. */
export function parseConfigsJson(data: unknown, name = "configs"): MachineConfig[] {
  if (!Array.isArray(data) || data.length === 0) {
    throw new ProjectError(`${name}: expected a non-empty JSON array of configurations`);
  }
  const seen = new Set<string>();
  return data.map((c, i) => {
    const at = `${name}[${i}]`;
    if (!isRecord(c)) throw new ProjectError(`${at}: expected an object`);
    for (const k of ["name", "description", "machine", "memory"]) {
      if (typeof c[k] !== "string" || c[k] === "") {
        throw new ProjectError(`${at}: '${k}' must be a non-empty string`);
      }
    }
    if (c.cpu !== undefined && typeof c.cpu !== "string") {
      throw new ProjectError(`${at}: 'cpu' must be a string`);
    }
    if (c.smp !== undefined && !(Number.isInteger(c.smp) && (c.smp as number) > 0)) {
      throw new ProjectError(`${at}: 'smp' must be a positive integer`);
    }
    const without = c.tcgWithout;
    if (
      without !== undefined &&
      !(Array.isArray(without) && without.every((f) => typeof f === "string"))
    ) {
      throw new ProjectError(`${at}: 'tcgWithout' must be an array of strings`);
    }
    const config = c as unknown as MachineConfig;
    if (config.name === "all" || /[\s,]/.test(config.name)) {
      throw new ProjectError(`${at}: name '${config.name}' is reserved or has a blank or comma`);
    }
    if (seen.has(config.name)) throw new ProjectError(`${at}: name '${config.name}' twice`);
    seen.add(config.name);
    return config;
  });
}

function inside(dir: string, path: string): boolean {
  const rel = relative(dir, path);
  return rel === "" || (!rel.startsWith(`..${sep}`) && rel !== ".." && !isAbsolute(rel));
}

/**
 * The project described by `file`, or, when `file` is null, the defaults
 * for a repository at `dir`.
 */
export async function loadProject(file: string | null, dir = process.cwd()): Promise<Project> {
  const base = file === null ? resolve(dir) : dirname(resolve(file));
  const spec = file === null ? {} : parseProjectFile(await readJson(file, "project file"), file);
  const at = (p: string) => resolve(base, p);
  const kernel = at(spec.kernel ?? "kernel");
  const root = inside(base, kernel) ? base : dirname(kernel);
  const layoutFile = spec.layout === undefined ? null : at(spec.layout);
  const configsFile = spec.configs === undefined ? null : at(spec.configs);
  return {
    file: file === null ? null : resolve(file),
    root,
    kernelDir: relative(root, kernel),
    buildDir: at(spec.build ?? "build"),
    layout: layoutFile === null
      ? DEFAULT_LAYOUT_CONFIG
      : parseLayoutJson(await readJson(layoutFile, "layout file"), layoutFile),
    layoutFile,
    configs: configsFile === null
      ? CONFIGS
      : parseConfigsJson(await readJson(configsFile, "configurations file"), configsFile),
    configsFile,
    image: spec.image === undefined ? null : {
      image: at(spec.image),
      buildCommand: spec.buildCommand ?? null,
      cwd: base,
      append: spec.append ?? "",
      initrd: spec.initrd === undefined ? null : at(spec.initrd),
    },
  };
}

/** Throws a ProjectError unless the project's kernel sources are a directory. */
export async function checkKernelSources(project: Project): Promise<void> {
  if (project.image !== null) return; // built by a build of its own
  const kernel = join(project.root, project.kernelDir);
  if (await stat(kernel).then((s) => s.isDirectory(), () => false)) return;
  const why = project.file === null
    ? `the default, as no ${PROJECT_FILE} was found in ${project.root} or above`
    : `from ${project.file}`;
  throw new ProjectError(`kernel sources not found: ${kernel} (${why})`);
}

/**
 * The project of the directory `dir`: the nearest {@link PROJECT_FILE} in it
 * or above it; without one, the defaults for a repository at `dir`.
 */
export async function findProject(dir = process.cwd()): Promise<Project> {
  for (let d = resolve(dir);; d = dirname(d)) {
    const candidate = join(d, PROJECT_FILE);
    const found = await readFile(candidate).then(() => true, () => false);
    if (found) return loadProject(candidate);
    if (dirname(d) === d) return loadProject(null, dir);
  }
}
