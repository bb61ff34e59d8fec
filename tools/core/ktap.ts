/**
 * KTAP v1 (Linux's Kernel TAP) turned into TAP 14, line by line, for tools
 * that read TAP 14 only (the npm library exports it). The runner does not
 * use it: tap.ts reads KTAP and TAP 14 itself.
 *
 * What differs in KTAP (Documentation/dev-tools/ktap.rst):
 * - every nesting level starts with its own `KTAP version 1` line, indented
 *   one level (two spaces in the spec, four or a tab in older kernels): the
 *   nested version line is dropped and the level gets TAP 14's `# Subtest`
 *   header, at its parent's level;
 * - `# Subtest: name` is optional inside the level: without it the level's
 *   lines are held back until its closing result line names it (or the
 *   stream ends), then written after the header;
 * - indentation is re-written to TAP 14's four spaces per level; YAML blocks
 *   keep their indentation relative to their test point;
 * - "unknown lines" (kernel messages) may appear anywhere and at any
 *   indentation: they never open or close a level, they are written at the
 *   current level, where tap-parser treats them as non-TAP text.
 *
 * Directives (XFAIL, TIMEOUT, ERROR) are left in place: tap-parser keeps an
 * unknown directive in the description, where tap.ts reads it back.
 * A stream that starts with `TAP version N` passes through untouched.
 */

/** `KTAP version N` / `TAP version N` with nothing else on the line. */
const VERSION = /^(K?)TAP version (\d+)\s*$/;
const PLAN = /^\d+\.\.\d+/;
const RESULT = /^(?:not )?ok\b/;
const SUBTEST = /^# Subtest(?::\s*(.*?))?\s*$/;
const BAIL_OUT = /^bail out!/i;
/** Four spaces: TAP 14's indentation of one level. */
const TAP14_INDENT = "    ";
/** Columns a tab stands for when measuring indentation. */
const TAB_COLUMNS = 8;

/** One open nesting level. */
interface Level {
  /** Indentation (columns) of the level's lines in the input. */
  indent: number;
  /** The level's name, once known. */
  name: string | null;
  /** True once its `# Subtest` header may be written (named, closed or given up). */
  resolved: boolean;
}

/** An output line, or the place where a level's header goes once it is known. */
type Pending = string | { header: Level; depth: number };

function indentOf(line: string): number {
  let n = 0;
  for (const c of line) {
    if (c === " ") n++;
    else if (c === "\t") n += TAB_COLUMNS - (n % TAB_COLUMNS);
    else break;
  }
  return n;
}

/** The description of a result line: `ok 3 name # SKIP x` → `name`. */
function resultName(body: string): string {
  const m = /^(?:not )?ok(?:\s+\d+)?(?:\s+-)?\s*([^#]*)/.exec(body);
  return (m?.[1] ?? "").trim();
}

/**
 * Streams lines of (K)TAP and writes TAP 14 lines. Call {@link push} for
 * each line of the stream, starting with its version line, and
 * {@link end} once at the end (which writes any lines still held back).
 */
export class KtapNormalizer {
  readonly #emit: (line: string) => void;
  /** null until the first line; then true for KTAP, false for pass-through. */
  #ktap: boolean | null = null;
  /** Open levels; [0] is the top level. */
  readonly #levels: Level[] = [{ indent: 0, name: "", resolved: true }];
  /** Output waiting for a level header; empty when nothing is held back. */
  #queue: Pending[] = [];
  /** Indentation of the last result line, for the YAML block that may follow. */
  #lastResultIndent: number | null = null;
  /** Inside a YAML block: the input indentation of its `---` line. */
  #yaml: { indent: number; depth: number; base: number } | null = null;
  /** A `# Subtest: name` at a level's own indentation names the next level opened. */
  #nextName: string | null = null;

  /** Create a normalizer writing TAP 14 lines to `emit`. */
  constructor(emit: (line: string) => void) {
    this.#emit = emit;
  }

  /** True if the stream is KTAP (known after the first line). */
  get isKtap(): boolean {
    return this.#ktap === true;
  }

  /** Feed one line, without its terminator. */
  push(line: string): void {
    if (this.#ktap === false) {
      this.#emit(line);
      return;
    }
    if (this.#ktap === null) {
      const m = VERSION.exec(line.trim());
      this.#ktap = m !== null && m[1] === "K";
      this.#emit(this.#ktap ? "TAP version 14" : line);
      return;
    }
    this.#ktapLine(line);
  }

  /** End of stream: levels still waiting for a name are written unnamed. */
  end(): void {
    for (const level of this.#levels) level.resolved = true;
    this.#flush();
  }

  #ktapLine(line: string): void {
    const indent = indentOf(line);
    const body = line.trim();
    if (this.#yaml !== null) {
      if (this.#yamlLine(line, indent, body)) return;
    }
    if (body === "---" && this.#lastResultIndent !== null && indent > this.#lastResultIndent) {
      this.#yaml = { indent, depth: this.#depth(), base: this.#top().indent };
      this.#yamlLine(line, indent, body);
      return;
    }
    this.#lastResultIndent = null;
    if (VERSION.test(body)) return this.#version(indent);
    if (BAIL_OUT.test(body)) {
      this.end();
      this.#emit(body);
      return;
    }
    const subtest = SUBTEST.exec(body);
    if (subtest !== null) return this.#subtestHeader(indent, subtest[1] ?? "");
    if (PLAN.test(body)) {
      this.#structural(indent);
      this.#out(this.#pad() + body);
      return;
    }
    if (RESULT.test(body)) return this.#result(indent, body);
    // A diagnostic or unknown line: written where we are, never moving levels.
    this.#out(body === "" ? "" : this.#pad() + body);
  }

  /** Write a YAML line relative to its test point; false once the block is over. */
  #yamlLine(line: string, indent: number, body: string): boolean {
    const yaml = this.#yaml!;
    if (indent < yaml.indent && body !== "") {
      this.#yaml = null;
      return false;
    }
    const rest = line.slice(Math.min(yaml.base, indent));
    this.#out(TAP14_INDENT.repeat(yaml.depth) + rest.replace(/^\t+/, (t) => "  ".repeat(t.length)));
    if (body === "...") this.#yaml = null;
    return true;
  }

  /** A nested `KTAP version` line opens a level; it is not written itself. */
  #version(indent: number): void {
    this.#closeDeeperThan(indent);
    if (indent > this.#top().indent) this.#open(indent, this.#takeNextName());
  }

  #subtestHeader(indent: number, name: string): void {
    this.#closeDeeperThan(indent);
    const top = this.#top();
    if (indent > top.indent) {
      this.#open(indent, name);
    } else if (!top.resolved && top.name === null) {
      top.name = name;
      top.resolved = true;
      this.#flush();
    } else {
      // TAP 14 style: the header sits at the parent's level, before the level.
      this.#nextName = name;
    }
  }

  /** A plan or result line deeper than the current level opens one (no version line). */
  #structural(indent: number): void {
    this.#closeDeeperThan(indent);
    if (indent > this.#top().indent) this.#open(indent, this.#takeNextName());
  }

  #result(indent: number, body: string): void {
    // A result less indented than the current level closes it, and names it.
    while (this.#levels.length > 1 && indent < this.#top().indent) {
      const closed = this.#levels.pop()!;
      if (!closed.resolved) {
        if (indent >= this.#top().indent) closed.name ??= resultName(body);
        closed.resolved = true;
      }
    }
    this.#flush();
    if (indent > this.#top().indent) this.#open(indent, this.#takeNextName());
    this.#out(this.#pad() + body);
    this.#lastResultIndent = indent;
  }

  #takeNextName(): string | null {
    const name = this.#nextName;
    this.#nextName = null;
    return name;
  }

  #open(indent: number, name: string | null): void {
    const level: Level = { indent, name, resolved: name !== null };
    this.#queue.push({ header: level, depth: this.#depth() });
    this.#levels.push(level);
    this.#flush();
  }

  /** Levels more indented than `indent` end (their closing line never came). */
  #closeDeeperThan(indent: number): void {
    while (this.#levels.length > 1 && this.#top().indent > indent) {
      this.#levels.pop()!.resolved = true;
    }
    this.#flush();
  }

  #top(): Level {
    return this.#levels[this.#levels.length - 1];
  }

  #depth(): number {
    return this.#levels.length - 1;
  }

  #pad(): string {
    return TAP14_INDENT.repeat(this.#depth());
  }

  #out(line: string): void {
    if (this.#queue.length === 0) this.#emit(line);
    else this.#queue.push(line);
  }

  /** Write queued output up to the first header that is still unknown. */
  #flush(): void {
    let i = 0;
    for (; i < this.#queue.length; i++) {
      const item = this.#queue[i];
      if (typeof item === "string") {
        this.#emit(item);
        continue;
      }
      if (!item.header.resolved) break;
      const name = item.header.name;
      this.#emit(TAP14_INDENT.repeat(item.depth) + (name ? `# Subtest: ${name}` : "# Subtest"));
    }
    this.#queue = i === this.#queue.length ? [] : this.#queue.slice(i);
  }
}
