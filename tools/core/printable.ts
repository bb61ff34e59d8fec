/**
 * Text from the serial line made safe for a terminal, a JSON file and an
 * XML report: control characters (C0 but tab, DEL, C1 — which includes the
 * 8-bit CSI) are written as `\xNN`, so no escape sequence a kernel prints
 * reaches the user's terminal through a test name or a diagnostic. A
 * backslash stays as it is: the result is for reading, not for decoding.
 */

// deno-lint-ignore no-control-regex
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f-\x9f]/g;
/** The same class, to test for one: most lines have none. */
const HAS_CONTROL = new RegExp(CONTROL.source);

function hex(c: string): string {
  return `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`;
}

/**
 * Characters of one serial line that are kept; a longer line is cut there
 * (see {@link cutLine}), so memory follows the lines kept, not the log.
 */
export const MAX_LINE_CHARS = 64 * 1024;

/** A line cut at {@link MAX_LINE_CHARS}, saying how long it was. */
export function cutLine(kept: string, total: number): string {
  return `${kept.slice(0, MAX_LINE_CHARS)} [line cut: ${total} characters]`;
}

/** `text` with control characters other than tab written as `\xNN`. */
export function printable(text: string): string {
  // A replace with a function goes through the runtime even when nothing matches: every
  // serial line passes here, and a test is a compiled scan.
  return HAS_CONTROL.test(text) ? text.replace(CONTROL, hex) : text;
}
