/**
 * `deno task bench-runner [N]`: the runner's own cost per kernel test, on a
 * synthetic serial log of N results (default 100,000) shaped like the
 * kernel's (suites of 100 tests, `# RUN` lines, one failure in 1,000 with a
 * YAML diagnostic), in TAP 14 and in KTAP v1 with printk timestamps. Times
 * the parse (serial splitting, the TAP/KTAP reader, classification,
 * the live console's progress line) and the report (merging into the
 * record, the summary count, JSON, JUnit, the console's verdict)
 * separately, and prints microseconds per test. A benchmark, not a test: it
 * prints figures and asserts nothing.
 */
import { ConsoleReporter } from "./app/console.ts";
import { toJunit } from "./core/junit.ts";
import { bytesSource, LogTarget } from "./machines/log_target.ts";
import { attemptInput } from "./run/attempt.ts";
import { mergeAttempts, REPORT_SCHEMA, summarize } from "./core/record.ts";
import { runOnTarget } from "./run/run.ts";
import { ROOT } from "./paths.ts";

const TESTS_PER_SUITE = 100;
const FAIL_EVERY = 1000;
const NEVER_MS = 2 ** 31 - 1;

/** A TAP 14 log as the kernel prints it, with `n` results. */
export function syntheticTap(n: number): string {
  const suites = Math.ceil(n / TESTS_PER_SUITE);
  const out = ["", "TAP version 14", "# ouroboros: synthetic", `1..${suites}`];
  let id = 0;
  for (let s = 1; s <= suites; s++) {
    const count = Math.min(TESTS_PER_SUITE, n - (s - 1) * TESTS_PER_SUITE);
    out.push(`# Subtest: suite${s}`, `    1..${count}`);
    let ok = true;
    for (let t = 1; t <= count; t++) {
      id++;
      out.push(`    # RUN suite${s}.test${t}`);
      if (id % FAIL_EVERY === 0) {
        ok = false;
        out.push(
          `    not ok ${t} - test${t}`,
          "      ---",
          '      message: "x == y"',
          '      expected: "0x0000000000000001"',
          '      actual: "0x0000000000000002"',
          `      at: "kernel/tests/test_synthetic.c:${t}"`,
          "      ...",
        );
      } else out.push(`    ok ${t} - test${t}`);
    }
    out.push(`${ok ? "ok" : "not ok"} ${s} - suite${s}`);
  }
  return out.join("\n") + "\n";
}

/** The same results as KTAP v1, two-space nesting, printk timestamps. */
export function syntheticKtap(n: number): string {
  const suites = Math.ceil(n / TESTS_PER_SUITE);
  let clock = 0;
  const stamp = () => `[${(clock++ / 1e6).toFixed(6).padStart(12)}] `;
  const out = [`${stamp()}KTAP version 1`, `${stamp()}1..${suites}`];
  let id = 0;
  for (let s = 1; s <= suites; s++) {
    const count = Math.min(TESTS_PER_SUITE, n - (s - 1) * TESTS_PER_SUITE);
    out.push(`${stamp()}  KTAP version 1`, `${stamp()}  # Subtest: suite${s}`);
    out.push(`${stamp()}  1..${count}`);
    let ok = true;
    for (let t = 1; t <= count; t++) {
      id++;
      const fail = id % FAIL_EVERY === 0;
      ok &&= !fail;
      out.push(`${stamp()}  ${fail ? "not ok" : "ok"} ${t} test${t}`);
    }
    out.push(`${stamp()}${ok ? "ok" : "not ok"} ${s} suite${s}`);
  }
  return out.join("\n") + "\n";
}

interface Figures {
  format: string;
  results: number;
  bytes: number;
  parseMs: number;
  reportMs: number;
}

async function measure(format: string, log: string, n: number): Promise<Figures> {
  const bytes = new TextEncoder().encode(log);
  // The live console, in terminal mode, writing nowhere: its per-event cost is part of a run's.
  const console = new ConsoleReporter("tty", () => {}, () => 100);
  const job = { id: "bench", label: "kernel", description: format };
  const t0 = performance.now();
  console.start([job]);
  console.attemptStart(job, 1);
  const r = await runOnTarget(new LogTarget(bytesSource(bytes), format), {
    kernel: "",
    cmdline: "",
  }, {
    deadlines: { bootMs: NEVER_MS, silenceMs: NEVER_MS, runMs: NEVER_MS },
    onEvent: (e) => console.event(job, e),
  });
  const t1 = performance.now();
  const tests = r.report.counts.tests;
  if (tests !== n) throw new Error(`${format}: parsed ${tests} results, expected ${n}`);
  const input = await attemptInput(r, null, ROOT);
  const run = mergeAttempts({
    id: "bench",
    label: "kernel",
    config: "bench",
    target: { kind: "log", description: format, command: [] },
    cmdline: "",
  }, [input]);
  const report = summarize({
    schema: REPORT_SCHEMA,
    createdAt: new Date().toISOString(),
    durationMs: 0,
    kernel: null,
    build: null,
    checks: [],
    selection: {
      configs: [],
      filter: null,
      shard: null,
      retries: 0,
      deadlines: { bootMs: 0, silenceMs: 0, runMs: 0 },
    },
    runs: [run],
  });
  const json = JSON.stringify(report);
  const junit = toJunit(report);
  console.runEnd(job, run);
  const t2 = performance.now();
  if (json.length === 0 || junit.length === 0) throw new Error("empty report");
  return { format, results: n, bytes: bytes.length, parseMs: t1 - t0, reportMs: t2 - t1 };
}

function row(f: Figures): string {
  const us = (ms: number) => ((ms * 1000) / f.results).toFixed(2).padStart(7);
  return `${f.format.padEnd(6)} ${String(f.results).padStart(8)} ${
    (f.bytes / 2 ** 20).toFixed(1).padStart(6)
  } MiB  parse ${f.parseMs.toFixed(0).padStart(6)} ms (${us(f.parseMs)} µs/test)  report ${
    f.reportMs.toFixed(0).padStart(5)
  } ms (${us(f.reportMs)} µs/test)  total ${us(f.parseMs + f.reportMs)} µs/test`;
}

async function main(args: string[]): Promise<number> {
  const n = Number(args[0] ?? 100_000);
  console.log(`runner overhead on a synthetic log of ${n} results (best of 3 per format)`);
  for (const [format, log] of [["tap14", syntheticTap(n)], ["ktap1", syntheticKtap(n)]] as const) {
    const runs: Figures[] = [];
    for (let i = 0; i < 3; i++) runs.push(await measure(format, log, n));
    runs.sort((a, b) => a.parseMs + a.reportMs - (b.parseMs + b.reportMs));
    console.log(row(runs[0]));
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
