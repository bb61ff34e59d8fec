/**
 * Headless Chromium (Debian's `chromium`, installed by the toolchain check's
 * `browser` group) for looking at a page as a person's browser shows it:
 * the DOM after the page's scripts ran (`--dump-dom`) and a screenshot.
 * Every run gets a new empty profile and no network beyond the page's own
 * files: background networking, component updates, sync and QUIC are off.
 * Starting Chromium costs far more than the page (~4 CPU-s on 2 cores for
 * about:blank): one start does both the DOM dump and the screenshot, and
 * without the sandbox (root) the browser, renderer and GPU work share one
 * process without zygotes (`--single-process --no-zygote`: 5 processes
 * instead of 14, same DOM and screenshot bytes, ~15% less CPU).
 */
import { execa } from "execa";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { pathToFileURL } from "node:url";
import { ensureToolGroups } from "../host/toolcheck.ts";

/** How long one browser run may take. */
const BROWSER_TIMEOUT_MS = 60_000;

/** What to ask of the browser for one page. */
export interface BrowserRequest {
  /** A local HTML file. */
  file: string;
  /** `--dump-dom`: the serialized DOM after load (scripts ran). */
  dumpDom?: boolean;
  /** A PNG screenshot of the window, written here. */
  screenshot?: string;
  /** Window size in CSS pixels (default 1400×1800). */
  size?: [number, number];
}

/** The command line (without the binary) for a request and a profile directory. */
export function chromiumArgs(req: BrowserRequest, profile: string, root: boolean): string[] {
  const [w, h] = req.size ?? [1400, 1800];
  const args = [
    "--headless",
    // --single-process and --no-zygote need the sandbox off; with it Chromium keeps its processes.
    ...(root ? ["--no-sandbox", "--single-process", "--no-zygote"] : []),
    "--disable-gpu",
    "--disable-extensions",
    "--disable-breakpad",
    "--mute-audio",
    "--password-store=basic",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    `--user-data-dir=${profile}`,
    `--window-size=${w},${h}`,
  ];
  if (req.screenshot !== undefined) args.push(`--screenshot=${req.screenshot}`);
  if (req.dumpDom) args.push("--dump-dom");
  args.push(pathToFileURL(req.file).href);
  return args;
}

/**
 * Open the page in headless Chromium (installed first if missing, like the
 * other system tools); resolves to the DOM dump (empty without `dumpDom`).
 * Throws with Chromium's own words when it fails.
 */
export async function openInChromium(req: BrowserRequest): Promise<string> {
  await ensureToolGroups(["browser"]);
  const profile = await mkdtemp(join(tmpdir(), "ouroboros-chromium-"));
  try {
    const r = await execa(
      "chromium",
      chromiumArgs(req, profile, process.getuid?.() === 0),
      { reject: false, stdin: "ignore", timeout: BROWSER_TIMEOUT_MS, all: false },
    );
    if (r.timedOut) throw new Error(`chromium did not finish in ${BROWSER_TIMEOUT_MS / 1000} s`);
    if (r.exitCode !== 0) {
      const errors = String(r.stderr).split("\n").filter((l) => !/dbus|Fontconfig/i.test(l));
      throw new Error(
        `chromium exited with ${r.exitCode ?? r.signal}: ${errors.slice(-5).join("\n")}`,
      );
    }
    return String(r.stdout);
  } finally {
    await rm(profile, { recursive: true, force: true });
  }
}
