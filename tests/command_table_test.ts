/**
 * The command table (tools/app/command_table.ts) and the two front-ends
 * over it: strict options (an unknown option is refused with the closest
 * known one, exit status 2), `deno test`'s options only after `--`, one
 * usage text and one set of exit statuses for the Deno and the npm CLI.
 */
import assert from "node:assert/strict";
import { execa } from "execa";
import {
  COMMANDS,
  commandSpec,
  EXIT,
  type Front,
  parseCommand,
  runCommandLine,
  UsageError,
} from "../tools/app/command_table.ts";
import { parseRunnerArgs } from "../tools/app/options.ts";
import { DENO_FRONT } from "../tools/cli.ts";
import { closest, editDistance } from "../tools/core/usage.ts";
import { main as npmMain } from "../tools/npm/cli.ts";
import { ROOT } from "../tools/paths.ts";

/** Run `f` with console.log and console.error captured. */
async function captured(f: () => Promise<number>): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const [log, error] = [console.log, console.error];
  console.log = console.error = (...a: unknown[]) => void lines.push(a.join(" "));
  try {
    return { code: await f(), out: lines.join("\n") };
  } finally {
    [console.log, console.error] = [log, error];
  }
}

/** The words that name a command (`pxe serve` is two). */
const words = (name: string) => name.split(" ");

Deno.test("command table: edit distance and the closest word", () => {
  assert.equal(editDistance("--filer", "--filter"), 1);
  assert.equal(editDistance("", "abc"), 3);
  assert.equal(editDistance("kitten", "sitting"), 3);
  assert.equal(closest("--filer", ["--config", "--filter", "--list"]), "--filter");
  assert.equal(closest("x", []), null);
});

Deno.test("command table: an unknown option is refused, naming it and the closest known one", () => {
  const cases: [Front, string, string, string][] = [
    ["deno", "test", "--filer", "--filter"],
    ["deno", "test", "--kernel-onl", "--kernel-only"],
    ["deno", "parse", "--jsno", "--json"],
    ["deno", "start", "--confg", "--config"],
    ["deno", "debug", "--prot", "--port"],
    ["deno", "iso", "--output", "--out"],
    ["deno", "pxe serve", "--interfce", "--interface"],
    ["npm", "test", "--retry", "--retries"],
  ];
  for (const [front, name, given, known] of cases) {
    const spec = commandSpec(front, name)!;
    assert.throws(() => parseCommand(spec, [given]), (e: unknown) => {
      assert.ok(e instanceof UsageError, String(e));
      assert.equal(e.message, `unknown option ${given} for ${name}: did you mean ${known}?`);
      return true;
    });
  }
});

Deno.test("command table: values, flags and words are checked", () => {
  const test = commandSpec("deno", "test")!;
  const parse = commandSpec("deno", "parse")!;
  const bad: [string[], RegExp][] = [
    [["--json"], /--json needs a value/],
    [["--json", "--list"], /--json needs a value/],
    [["--list=yes"], /--list takes no value/],
    [["-x"], /unknown option -x for test: did you mean -h\?/],
  ];
  for (const [argv, why] of bad) assert.throws(() => parseCommand(test, argv), why, argv.join(" "));
  assert.throws(() => parseCommand(parse, ["a", "b"]), /unexpected argument 'b'/);
  assert.throws(() => parseCommand(commandSpec("deno", "build")!, ["x"]), /build takes none/);
  // An inline value may start with dashes; after -- nothing is read.
  const p = parseCommand(test, ["--json=--odd", "f.ts", "--", "--fail-fast", "-x"]);
  assert.equal(p.values.json, "--odd");
  assert.deepEqual(p.words, ["f.ts"]);
  assert.deepEqual(p.passed, ["--fail-fast", "-x"]);
  assert.equal(parseCommand(parse, ["-h"]).help, true);
});

Deno.test("command table: deno test's own options go after -- only", () => {
  assert.throws(() => parseRunnerArgs(["--fail-fast"]), (e: unknown) => {
    assert.ok(e instanceof UsageError);
    assert.match(e.message, /unknown option --fail-fast for test/);
    assert.match(e.message, /go after --: deno task test -- --fail-fast/);
    return true;
  });
  const { rest } = parseRunnerArgs(["tests/tap_test.ts", "--", "--fail-fast"]);
  assert.deepEqual(rest, ["tests/tap_test.ts", "--fail-fast"]);
  // Under Node there is no deno test: no files, nothing after --.
  assert.throws(() => parseRunnerArgs(["tests/x.ts"], undefined, "npm"), /no deno test here/);
  assert.throws(() => parseRunnerArgs(["--", "--fail-fast"], undefined, "npm"), /no deno test/);
});

Deno.test("command table: every command of both front-ends refuses an unknown option with 2", async () => {
  for (const c of COMMANDS) {
    for (const front of c.fronts) {
      const argv = [...words(c.name), "--no-such-option"];
      const run = front === "deno"
        ? () => runCommandLine(DENO_FRONT, argv)
        : () => npmMain(["--project", "/nonexistent/ouroboros.config.json", ...argv]);
      const { code, out } = await captured(run);
      assert.equal(code, EXIT.usage, `${front} ${c.name}: ${out}`);
      assert.match(out, new RegExp(`unknown option --no-such-option for ${c.name}: did you mean`));
      assert.match(out, new RegExp(`usage: \\S+( task)? ${c.name}`));
    }
  }
});

Deno.test("command table: help, unknown commands and the front-ends' lists", async () => {
  const deno = await captured(() => runCommandLine(DENO_FRONT, []));
  assert.equal(deno.code, EXIT.ok);
  const npm = await captured(() => npmMain(["help"]));
  assert.equal(npm.code, EXIT.ok);
  for (const c of COMMANDS) {
    for (const front of c.fronts) {
      assert.match(front === "deno" ? deno.out : npm.out, new RegExp(`^  ${c.name}\\b`, "m"));
    }
  }
  assert.doesNotMatch(deno.out, /^ {2}version/m);
  assert.doesNotMatch(npm.out, /^ {2}debug/m);
  const typo = await captured(() => runCommandLine(DENO_FRONT, ["tset"]));
  assert.equal(typo.code, EXIT.usage);
  assert.match(typo.out, /unknown command tset: did you mean test\?/);
  const npmTypo = await captured(() => npmMain(["biuld"]));
  assert.equal(npmTypo.code, EXIT.usage);
  assert.match(npmTypo.out, /unknown command biuld: did you mean build\?/);
  const help = await captured(() => runCommandLine(DENO_FRONT, ["parse", "--help"]));
  assert.equal(help.code, EXIT.ok);
  assert.match(help.out, /--elf KERNEL/);
  assert.match(help.out, /exit status: 0 .*, 1 .*, 2 wrong command line/);
});

Deno.test("command table: deno task test --filer exits 2 before anything runs", async () => {
  const r = await execa(Deno.execPath(), ["run", "-A", "tools/test.ts", "--filer", "x"], {
    cwd: ROOT,
    reject: false,
    env: { NO_COLOR: "1" },
  });
  assert.equal(r.exitCode, EXIT.usage);
  assert.match(r.stderr, /^error: unknown option --filer for test: did you mean --filter\?$/m);
  assert.equal(r.stdout, "");
});
