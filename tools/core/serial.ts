/**
 * The serial byte stream of a QEMU run, cut into lines.
 *
 * COM1 output arrives in arbitrary chunks: a line may be split across
 * chunks, a `\r\n` pair may be split between two chunks, and firmware may
 * print noise (with bare `\r`s) before the kernel starts its TAP stream.
 */

/** Where the kernel's TAP stream starts: the first `TAP version` or `KTAP version`. */
export const TAP_START = /K?TAP version/;

/** A line handler. */
export type LineHandler = (line: string) => void;

/**
 * Splits a stream of chunks into lines without their terminators.
 *
 * `\n`, `\r\n` and a lone `\r` each end one line; a `\r\n` pair split across
 * two chunks still ends only one line. Bytes are decoded as UTF-8, also when a
 * multi-byte sequence is split across chunks (invalid bytes become U+FFFD).
 */
export class LineSplitter {
  readonly #onLine: LineHandler;
  readonly #decoder = new TextDecoder("utf-8");
  #partial = "";
  #pendingCr = false;
  #ended = false;

  /** Create a splitter that calls `onLine` with each complete line. */
  constructor(onLine: LineHandler) {
    this.#onLine = onLine;
  }

  /** Feed a chunk; calls the handler for every line it completes. */
  push(chunk: Uint8Array | string): void {
    if (this.#ended) throw new Error("LineSplitter: push after end");
    const text = typeof chunk === "string"
      ? this.#decoder.decode() + chunk
      : this.#decoder.decode(chunk, { stream: true });
    this.#feed(text);
  }

  /** End of stream: emits a final line that had no terminator, if any. */
  end(): void {
    if (this.#ended) return;
    this.#feed(this.#decoder.decode());
    this.#ended = true;
    this.#pendingCr = false;
    if (this.#partial !== "") {
      const last = this.#partial;
      this.#partial = "";
      this.#onLine(last);
    }
  }

  #feed(text: string): void {
    if (text === "") return;
    if (this.#pendingCr) {
      this.#pendingCr = false;
      // The `\n` of a `\r\n` pair whose `\r` ended the previous chunk.
      if (text.startsWith("\n")) text = text.slice(1);
      if (text === "") return;
    }
    const parts = text.split(/\r\n|\r|\n/);
    this.#pendingCr = text.endsWith("\r");
    parts[0] = this.#partial + parts[0];
    this.#partial = parts.pop() ?? "";
    for (const line of parts) this.#onLine(line);
  }
}

/**
 * A pattern for the text that preceded the version line, as a per-line
 * prefix: digit runs match any digits and blank runs any blanks, so
 * `[    0.123456] ` also matches `[   12.5] ` (printk timestamps), and
 * `<6>[    1.000000] ` matches every later `<N>[ ... ] `.
 */
export function prefixPattern(prefix: string): RegExp {
  const parts = prefix.split(/(\d+|\s+)/).filter((p) => p !== "");
  const escape = (p: string) => p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const source = parts.map((p, i) => {
    if (/^\d+$/.test(p)) return "\\d+";
    // Blanks after the prefix are matched exactly: more would be the TAP's own indentation.
    if (/^\s+$/.test(p)) return i === parts.length - 1 ? escape(p) : "\\s*";
    return escape(p);
  }).join("");
  return new RegExp(`^${source}`);
}

/**
 * Drops every line before the TAP stream starts. The start is the first
 * occurrence of {@link TAP_START}, possibly in the middle of a line after
 * firmware noise or a log prefix; that line is kept from the marker on. If
 * text preceded the marker on its line (a printk timestamp, a log level),
 * later lines that start with text of the same shape (see
 * {@link prefixPattern}) lose it, as `kunit.py parse` does; other lines pass
 * through untouched.
 */
export class TapStartFilter {
  readonly #onLine: LineHandler;
  readonly #preamble: string[] = [];
  #started = false;
  #prefix: RegExp | null = null;

  /** Create a filter that passes TAP lines to `onLine`. */
  constructor(onLine: LineHandler) {
    this.#onLine = onLine;
  }

  /** True once the TAP start marker has been seen. */
  get started(): boolean {
    return this.#started;
  }

  /** What was dropped: whole lines before the marker, then the text before it on its line. */
  get preamble(): readonly string[] {
    return this.#preamble;
  }

  /** Feed one complete line. */
  push(line: string): void {
    if (this.#started) {
      this.#onLine(this.#prefix === null ? line : line.replace(this.#prefix, ""));
      return;
    }
    const match = TAP_START.exec(line);
    if (match === null) {
      this.#preamble.push(line);
      return;
    }
    if (match.index > 0) {
      const prefix = line.slice(0, match.index);
      this.#preamble.push(prefix);
      // Only a prefix with some structure is a per-line prefix, not noise.
      if (/[\d\[\]<>:]/.test(prefix)) this.#prefix = prefixPattern(prefix);
    }
    this.#started = true;
    this.#onLine(line.slice(match.index));
  }
}

/** Callbacks of a {@link SerialStream}. */
export interface SerialStreamHandlers {
  /** Every complete line, firmware noise included. */
  onLine?: LineHandler;
  /** Lines of the TAP stream only (from the TAP start marker on). */
  onTapLine?: LineHandler;
}

/**
 * The whole serial pipeline: keeps the raw text (for a log), splits it into
 * lines and hands the TAP part of them on.
 */
export class SerialStream {
  readonly #splitter: LineSplitter;
  readonly #filter: TapStartFilter;
  readonly #rawDecoder = new TextDecoder("utf-8");
  #raw = "";
  #bytes = 0;

  /** Create a stream calling `handlers` as lines complete. */
  constructor(handlers: SerialStreamHandlers = {}) {
    const { onLine, onTapLine } = handlers;
    this.#filter = new TapStartFilter((line) => onTapLine?.(line));
    this.#splitter = new LineSplitter((line) => {
      onLine?.(line);
      this.#filter.push(line);
    });
  }

  /** Feed a chunk as it arrives. */
  push(chunk: Uint8Array | string): void {
    if (typeof chunk === "string") {
      this.#raw += this.#rawDecoder.decode() + chunk;
      this.#bytes += new TextEncoder().encode(chunk).byteLength;
    } else {
      this.#raw += this.#rawDecoder.decode(chunk, { stream: true });
      this.#bytes += chunk.byteLength;
    }
    this.#splitter.push(chunk);
  }

  /** End of stream: flushes a final unterminated line. */
  end(): void {
    this.#raw += this.#rawDecoder.decode();
    this.#splitter.end();
  }

  /** Everything received so far, decoded, with its original `\r`s. */
  get raw(): string {
    return this.#raw;
  }

  /** Number of bytes received. */
  get byteCount(): number {
    return this.#bytes;
  }

  /** True once a `TAP version` / `KTAP version` marker was seen. */
  get tapStarted(): boolean {
    return this.#filter.started;
  }

  /** The noise dropped before the TAP stream (see {@link TapStartFilter.preamble}). */
  get preamble(): readonly string[] {
    return this.#filter.preamble;
  }
}
