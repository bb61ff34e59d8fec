import assert from "node:assert/strict";
import { LineSplitter, SerialStream, TapStartFilter } from "../tools/core/serial.ts";

const FIXTURES = new URL("./fixtures/tap/", import.meta.url);

function split(chunks: (string | Uint8Array)[]): string[] {
  const lines: string[] = [];
  const s = new LineSplitter((l) => lines.push(l));
  for (const c of chunks) s.push(c);
  s.end();
  return lines;
}

/** Cut bytes into chunks of `size` (the last may be shorter). */
function chunked(bytes: Uint8Array, size: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i += size) {
    out.push(bytes.subarray(i, i + size));
  }
  return out;
}

Deno.test("LineSplitter: \\n, \\r\\n and lone \\r each end one line", () => {
  assert.deepEqual(split(["a\nb\r\nc\rd\n"]), ["a", "b", "c", "d"]);
});

Deno.test("LineSplitter: empty lines are kept", () => {
  assert.deepEqual(split(["a\n\nb\r\n\r\nc\n"]), ["a", "", "b", "", "c"]);
});

Deno.test("LineSplitter: a line split across chunks is emitted once, whole", () => {
  const lines: string[] = [];
  const s = new LineSplitter((l) => lines.push(l));
  s.push("TAP ver");
  assert.deepEqual(lines, []);
  s.push("sion 14\n1.");
  assert.deepEqual(lines, ["TAP version 14"]);
  s.push(".2\n");
  assert.deepEqual(lines, ["TAP version 14", "1..2"]);
});

Deno.test("LineSplitter: \\r\\n split between chunks ends one line, not two", () => {
  assert.deepEqual(split(["ok 1\r", "\nok 2\r", "\n"]), ["ok 1", "ok 2"]);
  assert.deepEqual(split(["x\r", "\n", "\n"]), ["x", ""]);
});

Deno.test("LineSplitter: a lone \\r at a chunk end followed by text is a line end", () => {
  assert.deepEqual(split(["a\r", "b\n"]), ["a", "b"]);
});

Deno.test("LineSplitter: the final unterminated line is emitted at end only", () => {
  const lines: string[] = [];
  const s = new LineSplitter((l) => lines.push(l));
  s.push("ok 1\nok 2");
  assert.deepEqual(lines, ["ok 1"]);
  s.end();
  assert.deepEqual(lines, ["ok 1", "ok 2"]);
  s.end();
  assert.deepEqual(lines, ["ok 1", "ok 2"]);
  assert.throws(() => s.push("more"));
});

Deno.test("LineSplitter: a terminated stream adds no empty line at end", () => {
  assert.deepEqual(split(["a\r\n"]), ["a"]);
  assert.deepEqual(split(["a\r"]), ["a"]);
  assert.deepEqual(split([]), []);
});

Deno.test("LineSplitter: UTF-8 split across byte chunks decodes intact", () => {
  const bytes = new TextEncoder().encode("µs → ok\n");
  assert.deepEqual(split(chunked(bytes, 1)), ["µs → ok"]);
});

Deno.test("TapStartFilter: drops lines before the marker, keeps the line from it", () => {
  const out: string[] = [];
  const f = new TapStartFilter((l) => out.push(l));
  f.push("SeaBIOS");
  f.push("noise TAP version 14");
  f.push("1..1");
  f.push("# TAP version text later is not special");
  assert.deepEqual(out, [
    "TAP version 14",
    "1..1",
    "# TAP version text later is not special",
  ]);
  assert.deepEqual(f.preamble, ["SeaBIOS", "noise "]);
  assert.deepEqual(f.started, true);
});

Deno.test("TapStartFilter: KTAP version also starts the stream, K kept", () => {
  const out: string[] = [];
  const f = new TapStartFilter((l) => out.push(l));
  f.push("\x1b[0mKTAP version 1");
  assert.deepEqual(out, ["KTAP version 1"]);
});

Deno.test("TapStartFilter: nothing passes without a marker", () => {
  const out: string[] = [];
  const f = new TapStartFilter((l) => out.push(l));
  f.push("ok 1 - looks like TAP");
  f.push("1..1");
  assert.deepEqual(out, []);
  assert.deepEqual(f.started, false);
  assert.deepEqual(f.preamble, ["ok 1 - looks like TAP", "1..1"]);
});

Deno.test("SerialStream: firmware noise fixture gives the same TAP lines in any chunking", async () => {
  const bytes = await Deno.readFile(new URL("firmware-noise.tap", FIXTURES));
  const clean = await Deno.readTextFile(new URL("pass.tap", FIXTURES));
  const expected = clean.split("\n").slice(0, -1);
  for (const size of [1, 2, 3, 7, 64, bytes.length]) {
    const tap: string[] = [];
    const all: string[] = [];
    const s = new SerialStream({
      onTapLine: (l) => tap.push(l),
      onLine: (l) => all.push(l),
    });
    for (const c of chunked(bytes, size)) s.push(c);
    s.end();
    assert.deepEqual(tap, expected, `chunk size ${size}`);
    assert.deepEqual(s.preamble, [
      "SeaBIOS (version 1.16.2-debian-1.16.2-1)",
      "",
      "Booting from ROM...",
      "\x1b[2Jprogress 10%",
      "progress 100%",
      "qboot noise ",
    ]);
    assert.deepEqual(all.length, s.preamble.length - 1 + expected.length);
    assert.deepEqual(s.tapStarted, true);
    assert.deepEqual(s.byteCount, bytes.length);
    assert.deepEqual(s.raw, new TextDecoder().decode(bytes));
  }
});

Deno.test("SerialStream: \\r\\n fixture gives the same lines as the \\n one", async () => {
  const crlf = await Deno.readFile(new URL("crlf.tap", FIXTURES));
  const lf = await Deno.readTextFile(new URL("pass.tap", FIXTURES));
  const tap: string[] = [];
  const s = new SerialStream({ onTapLine: (l) => tap.push(l) });
  for (const c of chunked(crlf, 5)) s.push(c);
  s.end();
  assert.deepEqual(tap, lf.split("\n").slice(0, -1));
  assert.deepEqual(s.raw.includes("\r\n"), true);
});

Deno.test("SerialStream: garbage without a marker never starts TAP", async () => {
  const bytes = await Deno.readFile(new URL("garbage.tap", FIXTURES));
  const tap: string[] = [];
  const s = new SerialStream({ onTapLine: (l) => tap.push(l) });
  s.push(bytes);
  s.end();
  assert.deepEqual(tap, []);
  assert.deepEqual(s.tapStarted, false);
  assert.deepEqual(s.preamble.length, 3);
  assert.deepEqual(s.byteCount, bytes.length);
});
