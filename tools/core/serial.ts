/**
 * The serial byte stream of a QEMU run, cut into lines.
 *
 * COM1 output arrives in arbitrary chunks: a line may be split across
 * chunks, a `\r\n` pair may be split between two chunks, and firmware may
 * print noise (with bare `\r`s) before the kernel starts its TAP stream.
 */

/** Where the kernel's TAP stream starts: the first `TAP version` or `KTAP version`. */
export const TAP_START = /K?TAP version/;

import { cutLine, MAX_LINE_CHARS } from "./printable.ts";

/** Lines before the TAP stream kept for messages. */
const MAX_PREAMBLE_LINES = 100;
/** Characters of the raw serial output kept when the whole log is not wanted. */
const RAW_HEAD_CHARS = 4096;

/** A line handler. */
export type LineHandler = (line: string) => void;

/**
 * Splits a stream of chunks into lines without their terminators.
 *
 * `\n`, `\r\n` and a lone `\r` each end one line; a `\r\n` pair split across
 * two chunks still ends only one line. Bytes are decoded as UTF-8, also when a
 * multi-byte sequence is split across chunks (invalid bytes become U+FFFD).
 * A line longer than {@link MAX_LINE_CHARS} is cut there (and says so), so a
 * line of megabytes costs no more memory than that.
 */
export class LineSplitter {
  readonly #onLine: LineHandler;
  readonly #decoder = new TextDecoder("utf-8");
  #partial = "";
  /** Length of the line being read, including what was cut. */
  #partialLength = 0;
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
    if (this.#partialLength > 0) this.#emitPartial();
  }

  #append(text: string): void {
    if (this.#partial.length < MAX_LINE_CHARS) {
      this.#partial += text.slice(0, MAX_LINE_CHARS - this.#partial.length);
    }
    this.#partialLength += text.length;
  }

  #emitPartial(): void {
    const line = this.#partialLength > this.#partial.length
      ? cutLine(this.#partial, this.#partialLength)
      : this.#partial;
    this.#partial = "";
    this.#partialLength = 0;
    this.#onLine(line);
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
    const last = parts.pop() ?? "";
    for (const line of parts) {
      this.#append(line);
      this.#emitPartial();
    }
    this.#append(last);
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

  /** Keep a line of the preamble: the first ones and the last one. */
  #keep(line: string): void {
    if (this.#preamble.length >= MAX_PREAMBLE_LINES) this.#preamble.pop();
    this.#preamble.push(line);
  }

  /** Feed one complete line. */
  push(line: string): void {
    if (this.#started) {
      this.#onLine(this.#prefix === null ? line : line.replace(this.#prefix, ""));
      return;
    }
    const match = TAP_START.exec(line);
    if (match === null) {
      this.#keep(line);
      return;
    }
    if (match.index > 0) {
      const prefix = line.slice(0, match.index);
      this.#keep(prefix);
      // Only a prefix with some structure (or blanks alone) is a per-line prefix, not noise.
      if (/[\d\[\]<>:]/.test(prefix) || /^\s+$/.test(prefix)) {
        this.#prefix = prefixPattern(prefix);
      }
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

  readonly #keepRaw: boolean;

  /**
   * Create a stream calling `handlers` as lines complete. With `keepRaw`
   * false only the first characters of the raw output are kept (a saved log
   * of any size is read in constant memory).
   */
  constructor(handlers: SerialStreamHandlers = {}, keepRaw = true) {
    const { onLine, onTapLine } = handlers;
    this.#keepRaw = keepRaw;
    this.#filter = new TapStartFilter((line) => onTapLine?.(line));
    this.#splitter = new LineSplitter((line) => {
      onLine?.(line);
      this.#filter.push(line);
    });
  }

  /** Feed a chunk as it arrives. */
  push(chunk: Uint8Array | string): void {
    const keep = this.#keepRaw || this.#raw.length < RAW_HEAD_CHARS;
    if (typeof chunk === "string") {
      if (keep) this.#raw += this.#rawDecoder.decode() + chunk;
      this.#bytes += new TextEncoder().encode(chunk).byteLength;
    } else {
      if (keep) this.#raw += this.#rawDecoder.decode(chunk, { stream: true });
      this.#bytes += chunk.byteLength;
    }
    if (!this.#keepRaw && this.#raw.length > RAW_HEAD_CHARS) {
      this.#raw = this.#raw.slice(0, RAW_HEAD_CHARS);
    }
    this.#splitter.push(chunk);
  }

  /** End of stream: flushes a final unterminated line. */
  end(): void {
    this.#raw += this.#rawDecoder.decode();
    this.#splitter.end();
  }

  /** Everything received so far (or its start, without `keepRaw`), decoded, with its `\r`s. */
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
