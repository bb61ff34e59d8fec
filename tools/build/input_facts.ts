/**
 * Facts about build inputs, remembered by file identity so a build with
 * nothing changed reads (almost) no input again: the SHA-256 of a file's
 * contents, and what a tool binary says about itself (`gcc --version`).
 *
 * A fact is kept with the identity of the file it was taken from: device,
 * inode, size, modification and change time. It is used again only while
 * the file still has that identity. A write changes the times; setting
 * the modification time back (touch -d) still changes the change time,
 * which nothing but the kernel sets.
 *
 * Timestamps are coarse (a clock tick on Linux, whole seconds on some file
 * systems): a file written twice within one tick with the same size keeps
 * its identity. As git does with its index, a fact is therefore only kept
 * when the file's times are older than the moment it was read by more than
 * {@link RACY_MS}: a later write then gives it a newer time. A file changed
 * within that window is read again every time until it has aged.
 *
 * Facts live in memory for the process, and on disk in a build directory
 * (`<out>/.input-facts.json`, and `<out>/.tool-facts.json` for tools: see
 * {@link toolFact}), written at the end of a build. They are only facts
 * about inputs: every key, and every verdict, is computed from them anew.
 */
import { closeSync, openSync, readFileSync, readSync, realpathSync, statSync } from "node:fs";
import { rename, rm, writeFile } from "node:fs/promises";
import { delimiter, isAbsolute, join } from "node:path";
import process from "node:process";

/** How much older than the read a file's times must be for its fact to be kept. */
export const RACY_MS = 2000;

/**
 * The version of the on-disk format (a different one is ignored). 3: tools'
 * facts kept before launchers under a tool's name were told (isLauncher)
 * are not used. 4: a driver's program names are kept with the paths that
 * would run instead ({@link programName}). 5: a relative program path the
 * driver printed is kept absolute, from where it ran.
 */
export const FACTS_FORMAT = 5;

/**
 * What a file's identity is made of: the fields of node:fs's Stats used
 * here, by their own names (the npm package's declarations cannot name
 * node:fs's types: it ships without @types/node).
 */
export interface FileStatus {
  dev: number;
  ino: number;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  mode: number;
  isFile(): boolean;
}

/** A file's identity: every field a change of its contents changes. */
function identityOf(info: FileStatus): string {
  return `${info.dev}:${info.ino}:${info.size}:${info.mtimeMs}:${info.ctimeMs}`;
}

/** True when a file with these times may still change without changing its identity. */
function isRacy(info: FileStatus, readAt: number): boolean {
  return Math.max(info.mtimeMs, info.ctimeMs) > readAt - RACY_MS;
}

interface Fact {
  /** {@link identityOf} of the file when the fact was taken. */
  id: string;
  value: string;
}

/** The clock facts are taken by (tests move it on: see {@link setFactClock}). */
let now: () => number = Date.now;

/**
 * For tests: take facts as if at `clock()` (null: the real clock), so a
 * file just written counts as aged and its fact is kept.
 */
export function setFactClock(clock: (() => number) | null): void {
  now = clock ?? Date.now;
}

/** Facts of this process: contents' hashes by path, tools' facts by tool and question. */
const hashes = new Map<string, Fact>();
const tools = new Map<string, Fact>();
/**
 * Tools' facts that may be kept in a build directory (see {@link toolFact}), by
 * tool and question, with their {@link keptToolIdentity}.
 */
const keptTools = new Map<string, Fact>();
/** The keys of {@link keptTools} this process asked or used (the others were only loaded). */
const toolsInUse = new Set<string>();
/** Questions to tools under way, by the same key: answered once for all who ask meanwhile. */
const asking = new Map<string, { id: string; value: Promise<string> }>();
/** Build directories whose facts were loaded into this process. */
const loaded = new Set<string>();

/** SHA-256 of `data`, in hex (Web Crypto: node:crypto costs a command ~60 ms of CPU to load). */
export async function sha256Hex(data: string | Uint8Array): Promise<string> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The file's status, or null if there is none. Stats of one batch of steps
 * (`memo`, see {@link fileHash}) are taken once.
 */
function statOrNull(path: string, memo?: StatMemo): FileStatus | null {
  const known = memo?.stats.get(path);
  if (known !== undefined) return known;
  let info: FileStatus | null;
  try {
    info = statSync(path, { throwIfNoEntry: false }) ?? null;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOTDIR") throw e;
    info = null;
  }
  if (memo !== undefined && !memo.writes.has(path)) memo.stats.set(path, info);
  return info;
}

/**
 * Stats shared by the steps of one batch (steps.ts runAll): the steps of a
 * batch run together, so none reads what another writes, and their inputs'
 * status is taken once a batch. What the batch writes is never kept.
 */
export class StatMemo {
  readonly stats = new Map<string, FileStatus | null>();
  constructor(
    /** The files the batch writes. */
    readonly writes: ReadonlySet<string>,
  ) {}
}

/** What input_facts.ts knows a file by (null: no such file), for tests. */
export function fileIdentity(path: string): string | null {
  const info = statOrNull(path);
  return info === null ? null : identityOf(info);
}

/**
 * SHA-256 of a file's contents in hex, or null if there is no such file.
 * Read only when no fact of the file's present identity is known.
 */
export async function fileHash(path: string, memo?: StatMemo): Promise<string | null> {
  const before = statOrNull(path, memo);
  if (before === null) return null;
  const id = identityOf(before);
  const known = hashes.get(path);
  if (known !== undefined && known.id === id) return known.value;
  // Taken before the read: a write after it gives the file a newer time than this.
  const readAt = now();
  let data: Uint8Array;
  try {
    // Synchronously: node:fs's promise API costs more than the read itself under Deno.
    data = readFileSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw e;
  }
  const value = await sha256Hex(data);
  // The identity from before the read: if the file changed since, its identity differs
  // from this one, and the fact is never used.
  if (isRacy(before, readAt)) hashes.delete(path);
  else hashes.set(path, { id, value });
  return value;
}

/**
 * The file's status, or null on any error: what a search that goes on past
 * a bad candidate (execvp past an unreadable, looping or too long PATH entry)
 * needs.
 */
function statOrNone(path: string): FileStatus | null {
  try {
    return statSync(path, { throwIfNoEntry: false }) ?? null;
  } catch {
    return null;
  }
}

/**
 * Every executable file named `name` in PATH's directories, in PATH's order,
 * with its status (only the first, with `first`). An entry whose status cannot be taken (EACCES, ELOOP,
 * ENAMETOOLONG) holds no match, as for execvp, which skips it.
 */
function pathMatches(name: string, first = false): { path: string; info: FileStatus }[] {
  const out: { path: string; info: FileStatus }[] = [];
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    // An empty entry is the current directory, as for execvp (which runs the tool).
    const p = join(dir === "" ? "." : dir, name);
    const info = statOrNone(p);
    if (info?.isFile() && info.mode & 0o111) out.push({ path: p, info });
    if (first && out.length > 0) break;
  }
  return out;
}

/**
 * What a program a tool runs is (`cc1`, `as`: named as `gcc -print-prog-name`
 * says, a path or a name found on PATH): its real path and identity, or
 * "missing". Taken each time (a stat, no read): a step's key holds it.
 */
export function programIdentity(name: string): string {
  const path = name.includes("/") ? name : pathMatches(name, true)[0]?.path;
  const info = path === undefined ? null : statOrNone(path);
  if (path === undefined || info === null) return `${name}: missing`;
  let real: string;
  try {
    real = realpathSync(path);
  } catch {
    return `${name}: missing`;
  }
  return `${real}:${identityOf(info)}`;
}

/**
 * The real names of the binaries whose facts may be kept in a build
 * directory, by the name a tool is called by (each without a target prefix
 * or a version suffix: see {@link ownName}). Anything else (a version
 * manager's shim, mise's binary behind its symlinks, a launcher such as
 * ccache, sccache, distcc or icecc, which runs another compiler it finds on
 * its own) may choose its compiler by what it reads, and is asked every
 * process.
 */
const OWN_NAMES: Readonly<Record<string, readonly string[]>> = {
  gcc: ["gcc"],
  cc: ["gcc", "cc"],
  clang: ["clang"],
  ld: ["ld", "ld.bfd", "ld.gold"],
  "ld.bfd": ["ld.bfd"],
  "ld.gold": ["ld.gold"],
  nasm: ["nasm"],
  strip: ["strip"],
};

/** An architecture, the start of a target prefix (`x86_64-linux-gnu-`, `x86_64-elf-`). */
const ARCH = "(?:x86_64|amd64|i[3-7]86|aarch64|arm\\w*|riscv\\w*|mips\\w*|p(?:ower)?pc\\w*|" +
  "s390x?|loongarch\\w*|sparc\\w*)";

/**
 * The file names that are `name`'s own: the name, after a target prefix or
 * not, before a version suffix (`-12`, `-13.2.0`) or not.
 */
const NAMED = new Map(
  Object.keys(OWN_NAMES).map((n) => [
    n,
    new RegExp(`^(?:${ARCH}(?:-[A-Za-z0-9_]+)*-)?${n.replace(".", "\\.")}(?:-\\d+(?:\\.\\d+)*)?$`),
  ]),
);

/** The name of {@link OWN_NAMES} a file's name is (`x86_64-linux-gnu-gcc-12` is gcc), or null. */
function ownName(path: string): string | null {
  const base = path.slice(path.lastIndexOf("/") + 1);
  for (const [name, re] of NAMED) if (re.test(base)) return name;
  return null;
}

/**
 * True if the real file of `tool` has a name {@link OWN_NAMES} allows for
 * it: a fact of that file may be kept in a build directory.
 */
function isOwnBinary(tool: string, real: string): boolean {
  const [own, is] = [ownName(tool), ownName(real)];
  return own !== null && is !== null && OWN_NAMES[own].includes(is);
}

/**
 * Environment variables that change where GCC's driver finds its programs and
 * files (`-print-file-name`), part of a kept tool fact's identity (and of the
 * C compiler's: steps.ts COMPILE_ENV).
 */
export const TOOL_ENV = ["GCC_EXEC_PREFIX", "COMPILER_PATH", "LIBRARY_PATH"] as const;

/** True if the file starts like an ELF executable (a script's `#!` does not). */
function isElf(path: string): boolean {
  const head = new Uint8Array(4);
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch {
    return false;
  }
  try {
    return readSync(fd, head, 0, 4, 0) === 4 && head[0] === 0x7f && head[1] === 0x45 &&
      head[2] === 0x4c && head[3] === 0x46;
  } finally {
    closeSync(fd);
  }
}

/**
 * Strings of compiler launchers' binaries, found in no compiler's, assembler's
 * or linker's: ccache's (sccache's hold it too), distcc's, icecream's (icecc)
 * and buildcache's. A launcher copied or hard-linked under a compiler's name
 * passes {@link isOwnBinary}; its own strings (its usage text, its messages,
 * its configuration's names) tell it. A change to the list goes with a new
 * {@link FACTS_FORMAT}: facts kept before were not read for the new strings.
 */
const LAUNCHER_SIGNS = /ccache|distcc|icecc|buildcache/;

/**
 * Binaries larger than this are not read for {@link LAUNCHER_SIGNS}, and
 * count as launchers (asked every process): a compiler driver, an assembler
 * or a linker is a few MB.
 */
const LAUNCHER_SCAN_LIMIT = 64 * 1024 * 1024;

/** What {@link isLauncher} found, by real path, with the file's identity then. */
const launchers = new Map<string, { id: string; launcher: boolean }>();

/**
 * True if the binary at `real` (status `info`) holds a launcher's signature
 * ({@link LAUNCHER_SIGNS}), or cannot be read. The whole file is read (a
 * signature may sit anywhere in .rodata: ccache's first is 1 KB in, its
 * .rodata 80 KB, gcc's 540 KB): a few ms for gcc, ld or NASM, taken only
 * when the tool is asked anyway, once per file identity and process.
 */
function isLauncher(real: string, info: FileStatus): boolean {
  const id = identityOf(info);
  const known = launchers.get(real);
  if (known !== undefined && known.id === id) return known.launcher;
  let launcher = true;
  if (info.size <= LAUNCHER_SCAN_LIMIT) {
    try {
      // One byte, one code unit (windows-1252 keeps ASCII as it is): a match is the bytes'.
      launcher = LAUNCHER_SIGNS.test(new TextDecoder("latin1").decode(readFileSync(real)));
    } catch {
      launcher = true;
    }
  }
  launchers.set(real, { id, launcher });
  return launcher;
}

/**
 * The identity under which a tool's fact may be kept in a build directory
 * for later processes, or null if it may not be kept. `id` is the process's
 * own (the file PATH finds, its real path and its identity). Only a binary
 * whose real name is the tool's own ({@link isOwnBinary}: gcc's may be
 * x86_64-linux-gnu-gcc-12) may be kept: a script or a binary of another name
 * (a version manager's shim, a wrapper) may choose its compiler by what it
 * reads, and a launcher (ccache & co) runs another binary (one copied under
 * the tool's name is told by its strings when the tool is asked: see
 * {@link isLauncher} in {@link toolFact}). Also part of the identity: every
 * other file of the tool's name on PATH (the one a launcher would find next)
 * and {@link TOOL_ENV}. Null too
 * when one of those files may still change without changing its identity
 * (see {@link isRacy}).
 */
function keptToolIdentity(
  tool: string,
  id: string,
  real: string,
  askedAt: number,
  matches: { path: string; info: FileStatus }[] | null,
): string | null {
  if (!isOwnBinary(tool, real) || !isElf(real)) return null;
  const others = matches ?? pathMatches(tool.slice(tool.lastIndexOf("/") + 1));
  if (others.some((m) => isRacy(m.info, askedAt))) return null;
  return JSON.stringify({
    file: real,
    id,
    path: others.map((m) => `${m.path}:${identityOf(m.info)}`),
    env: TOOL_ENV.map((v) => process.env[v] ?? null),
  });
}

/**
 * What `ask()` says about `tool` (its version line, its include directory):
 * asked again when the binary PATH finds is another file, or the same file
 * changed. `question` names what is asked (the flags). Kept for this
 * process; kept in a build directory too (`.tool-facts.json`, read back by
 * the next build's process) only for a binary, under the wider identity of
 * {@link keptToolIdentity}: the file PATH finds may be a launcher (ccache, a
 * version manager's shim, a cross-compiler's wrapper script) whose compiler
 * changes while the launcher stays the same file. `holds`: false when an
 * answer taken before no longer holds for what it depends on besides the
 * tool (checked on each use: see {@link programName}); the tool is asked again.
 * `keepable`: false when an answer must not be kept for later processes
 * (it could not be checked by `holds`); the tool is then asked every process.
 */
export async function toolFact(
  tool: string,
  question: string,
  ask: () => Promise<string>,
  holds: (value: string) => boolean = () => true,
  keepable: (value: string) => boolean = () => true,
): Promise<string> {
  // The file run: the path named, or for a bare name the first of its matches on PATH (all
  // looked for once: a kept fact's identity holds them).
  const matches = tool.includes("/") ? null : pathMatches(tool);
  const named = matches === null ? statOrNull(tool) : null;
  const found = matches?.[0] ?? (named?.isFile() ? { path: tool, info: named } : undefined);
  if (found === undefined) return await ask();
  const { path, info } = found;
  const real = realpathSync(path);
  const id = `${real}:${identityOf(info)}`;
  const key = `${tool}\0${question}`;
  const known = tools.get(key);
  if (known !== undefined && known.id === id && holds(known.value)) return known.value;
  // Asked already and not answered yet: the same answer, not a second run of the tool.
  const pending = asking.get(key);
  if (pending !== undefined && pending.id === id) return await pending.value;
  const askedAt = now();
  const keptId = isRacy(info, askedAt) ? null : keptToolIdentity(tool, id, real, askedAt, matches);
  toolsInUse.add(key);
  const kept = keptTools.get(key);
  if (keptId !== null && kept !== undefined && kept.id === keptId && holds(kept.value)) {
    tools.set(key, { id, value: kept.value });
    return kept.value;
  }
  const answer = ask();
  asking.set(key, { id, value: answer });
  try {
    // Read while the tool runs: a launcher's answer is never kept (see isLauncher). A fact
    // kept is used later only while the file has this identity, so is never read again.
    const keep = keptId !== null && !isLauncher(real, info);
    const value = await answer;
    if (isRacy(info, askedAt)) tools.delete(key);
    else tools.set(key, { id, value });
    if (keep && keptId !== null && keepable(value)) keptTools.set(key, { id: keptId, value });
    else keptTools.delete(key);
    return value;
  } finally {
    if (asking.get(key)?.value === answer) asking.delete(key);
  }
}

/** What a driver runs a program from (see {@link programName}). */
interface ProgramAnswer {
  /** What `-print-prog-name` said: a path, a bare name (run from PATH), or "". */
  name: string;
  /** The paths that would run instead if a program appeared there. */
  shadows: string[];
  /**
   * False if the driver named no program directories (`-print-search-dirs`
   * failed or printed no `programs:` line): `shadows` is then unknown, not
   * empty, and the answer is not kept for later processes.
   */
  searched: boolean;
}

/**
 * The paths where the driver would find `prog` before `name`, from its
 * `-print-search-dirs` output (`searchDirs`): each of its program directories
 * (the `programs:` line, in the driver's search order) with `prog` appended,
 * up to the one `name` is in. All of them for a bare name (none held it: the
 * driver runs PATH's), none for a path from elsewhere (a configured
 * assembler is looked at first). A relative directory (a relative -B or
 * GCC_EXEC_PREFIX) is taken from `cwd`, where the driver compiles. Null if
 * there is no `programs:` line.
 */
function shadowsOf(name: string, prog: string, searchDirs: string, cwd: string): string[] | null {
  const line = searchDirs.split("\n").find((l) => l.startsWith("programs:"));
  if (line === undefined) return null;
  const out: string[] = [];
  // "programs: =<dir>:<dir>...": the "=" follows the empty name of the list's variable.
  for (const dir of line.slice("programs:".length).trim().replace(/^=/, "").split(delimiter)) {
    if (dir === "") continue;
    // Appended as the driver does, not normalized: a ".." after a symlink goes where it leads.
    const said = dir.endsWith("/") ? dir + prog : `${dir}/${prog}`;
    if (said === name) return out;
    const path = inDir(cwd, said);
    if (!out.includes(path)) out.push(path);
  }
  return name.includes("/") ? [] : out;
}

/**
 * `path` as a program run in `dir` finds it: itself if absolute, else
 * joined to `dir` as the kernel resolves it, not normalized (a ".." after a
 * symlink goes where it leads).
 */
export function inDir(dir: string, path: string): string {
  return isAbsolute(path) ? path : `${dir.replace(/\/$/, "")}/${path}`;
}

/** The answer kept by {@link programName}, or null if `value` is not one. */
function programAnswer(value: string): ProgramAnswer | null {
  try {
    const a = JSON.parse(value);
    const ok = typeof a?.name === "string" && typeof a.searched === "boolean" &&
      Array.isArray(a.shadows) && a.shadows.every((p: unknown) => typeof p === "string");
    return ok ? a : null;
  } catch {
    return null;
  }
}

/** True if the driver would run the file at `path`: an executable file (not a directory). */
function isProgram(path: string): boolean {
  const info = statOrNone(path);
  return info !== null && info.isFile() && (info.mode & 0o111) !== 0;
}

/**
 * What the driver `driver` (gcc, clang) runs as `prog` (`cc1`, `as`): what
 * `-print-prog-name` says (a path, or a bare name it runs from PATH), or ""
 * if it does not say. Kept as a fact of the driver ({@link toolFact}) with
 * the paths of {@link shadowsOf} (asked once with it: `-print-search-dirs`),
 * and asked again once one of them holds a program (Debian's gcc says `as`,
 * and runs an `as` put in one of its own directories instead of PATH's), or
 * the path it said is no program any more (the driver looks further). A few
 * stats each use. Not kept for later processes if the driver names no
 * program directories (see {@link ProgramAnswer}). `run` runs the driver
 * with the given arguments; `cwd` is where it compiles (the build's root).
 */
export async function programName(
  driver: string,
  prog: string,
  run: (args: string[]) => Promise<{ failed: boolean; stdout: string }>,
  cwd: string = process.cwd(),
): Promise<string> {
  const flag = `-print-prog-name=${prog}`;
  const value = await toolFact(driver, `${flag} -print-search-dirs ${cwd}`, async () => {
    const [said, dirs] = await Promise.all([run([flag]), searchDirs(driver, run, cwd)]);
    const printed = said.failed ? "" : said.stdout.trim();
    // A relative path the driver printed is relative to where it ran (`cwd`): kept absolute (not
    // normalized, as shadowsOf), so its identity and the check on reuse see the file it runs.
    const name = printed.includes("/") ? inDir(cwd, printed) : printed;
    const shadows = dirs.failed ? null : shadowsOf(printed, prog, dirs.stdout, cwd);
    const answer: ProgramAnswer = { name, shadows: shadows ?? [], searched: shadows !== null };
    return JSON.stringify(answer);
  }, (kept) => {
    const a = programAnswer(kept);
    return a !== null && !a.shadows.some(isProgram) && (!a.name.includes("/") || isProgram(a.name));
  }, (value) => programAnswer(value)?.searched === true);
  return programAnswer(value)?.name ?? "";
}

/** The `-print-search-dirs` runs under way, by directory and driver (see {@link searchDirs}). */
const searchDirsRuns = new Map<string, Promise<{ failed: boolean; stdout: string }>>();

/**
 * `driver -print-search-dirs`, run once for the questions asked of the
 * driver at once (cc1's and as's: one spawn, not two), and again for a
 * later question (the driver may have changed since).
 */
function searchDirs(
  driver: string,
  run: (args: string[]) => Promise<{ failed: boolean; stdout: string }>,
  cwd: string,
): Promise<{ failed: boolean; stdout: string }> {
  const key = `${cwd}\0${driver}`;
  const running = searchDirsRuns.get(key);
  if (running !== undefined) return running;
  const p = run(["-print-search-dirs"]);
  searchDirsRuns.set(key, p);
  const done = () => {
    if (searchDirsRuns.get(key) === p) searchDirsRuns.delete(key);
  };
  p.then(done, done);
  return p;
}

/** The file a build directory's facts are kept in. */
export function factsFile(out: string): string {
  return join(out, ".input-facts.json");
}

/** The file a build directory's tools' facts are kept in (see {@link toolFact}). */
export function toolFactsFile(out: string): string {
  return join(out, ".tool-facts.json");
}

interface FactsFile {
  format: number;
  hashes: Record<string, Fact>;
}

interface ToolFactsFile {
  format: number;
  tools: Record<string, Fact>;
}

/** The text of each facts file as this process last read or wrote it, by path. */
const onDisk = new Map<string, string>();

/** The parsed facts file at `path` of this format, or null (missing, unreadable, another format). */
function readFactsFile(path: string): Record<string, unknown> | null {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return null;
  }
  onDisk.set(path, text);
  try {
    const parsed = JSON.parse(text);
    return parsed?.format === FACTS_FORMAT ? parsed : null;
  } catch {
    return null;
  }
}

/**
 * Add the facts kept in build directory `out` to this process's (once per
 * process and directory). A missing or unreadable file adds nothing.
 */
export function loadFacts(out: string): void {
  if (loaded.has(out)) return;
  loaded.add(out);
  const add = (into: Map<string, Fact>, from: unknown) => {
    if (typeof from !== "object" || from === null) return;
    for (const [k, f] of Object.entries(from as Record<string, Partial<Fact>>)) {
      if (typeof f?.id === "string" && typeof f.value === "string" && !into.has(k)) {
        into.set(k, { id: f.id, value: f.value });
      }
    }
  };
  add(hashes, readFactsFile(factsFile(out))?.hashes);
  add(keptTools, readFactsFile(toolFactsFile(out))?.tools);
}

/**
 * True if the binary a kept tool's fact was taken from is still there: the
 * facts of tools that are gone (a test's, an old compiler's), or whose file
 * cannot be looked at, are dropped when the facts are kept again.
 */
function exists(fact: Fact): boolean {
  let file: unknown;
  try {
    file = JSON.parse(fact.id)?.file;
  } catch {
    return false;
  }
  // Any error (EACCES, ELOOP, a NUL in the path) drops the fact: a throw here would keep
  // the facts from being saved at all, and the bad entry with them.
  return typeof file === "string" && statOrNone(file) !== null;
}

/** The name of the partial file a process writes a facts file `path` through. */
function partName(path: string): string {
  return `${path}.${process.pid}-${crypto.randomUUID()}.part`;
}

/**
 * The pid of the process that wrote a partial facts file named `name` (see
 * {@link partName}; a killed build leaves it behind), or null if the name is
 * no such file's.
 */
export function factsPartPid(name: string): number | null {
  const m =
    /^\.(?:input|tool)-facts\.json\.(\d+)-[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}\.part$/
      .exec(name);
  return m === null ? null : Number(m[1]);
}

/**
 * Write `text` to `path` whole or not at all, unless it holds that text
 * already. On failure, the partial file is removed.
 */
async function writeFacts(path: string, text: string): Promise<void> {
  if (onDisk.get(path) === text) return;
  const part = partName(path);
  try {
    await writeFile(part, text);
    await rename(part, path);
  } catch (e) {
    // Not left behind: a build directory would gather one per failed save.
    await rm(part, { force: true }).catch(() => {});
    throw e;
  }
  onDisk.set(path, text);
}

/**
 * Keep this process's facts about the files under `dirs` in build directory
 * `out`, and the tools' facts that may be kept (see {@link toolFact}), each
 * file whole or not at all.
 */
export async function saveFacts(out: string, dirs: readonly string[]): Promise<void> {
  const under = dirs.map((d) => d.replace(/\/?$/, "/"));
  const file: FactsFile = {
    format: FACTS_FORMAT,
    hashes: Object.fromEntries(
      [...hashes].filter(([p]) => under.some((d) => p.startsWith(d))),
    ),
  };
  const kept: ToolFactsFile = {
    format: FACTS_FORMAT,
    tools: Object.fromEntries([...keptTools].filter(([k, f]) => toolsInUse.has(k) || exists(f))),
  };
  await writeFacts(factsFile(out), JSON.stringify(file));
  await writeFacts(toolFactsFile(out), JSON.stringify(kept));
}
