import assert from "node:assert/strict";
import { countJunit, summaryLine } from "../tools/test.ts";

// Shape of what `deno test --junit-path` writes (Deno 2.9): a test with steps
// appears both as a case of its own and as one case per step.
const REPORT = `<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="deno test" tests="6" failures="2" errors="0" time="0.009">
    <testsuite name="./x_test.ts" tests="6" disabled="1" errors="0" failures="2">
        <testcase name="suite a" classname="./x_test.ts" time="0.005" line="1" col="6">
            <failure message="1 test step failed">1 test step failed.</failure>
        </testcase>
        <testcase name="plain" classname="./x_test.ts" time="0.000" line="6" col="6">
        </testcase>
        <testcase name="broken" classname="./x_test.ts" time="0.000" line="7" col="6">
            <failure message="Uncaught Error: no">Error: no</failure>
        </testcase>
        <testcase name="suite a &gt; one" classname="./x_test.ts" time="0.000" line="2" col="11">
        </testcase>
        <testcase name="suite a &gt; two" classname="./x_test.ts" time="0.001" line="3" col="11">
            <failure message="Uncaught Error: boom">Error: boom</failure>
        </testcase>
        <testcase name="suite a &gt; three" classname="./x_test.ts" time="0.000" line="4" col="11">
            <skipped/>
        </testcase>
    </testsuite>
</testsuites>`;

Deno.test("junit: steps are counted, their container is not", () => {
  assert.deepEqual(countJunit(REPORT), { passed: 2, failed: 2, skipped: 1, flaky: 0, notRun: 0 });
});

Deno.test("junit: an empty report counts nothing", () => {
  assert.deepEqual(countJunit("<testsuites></testsuites>"), {
    passed: 0,
    failed: 0,
    skipped: 0,
    flaky: 0,
    notRun: 0,
  });
});

Deno.test("junit: the closing line has the required form", () => {
  assert.equal(
    summaryLine({ passed: 3, failed: 1, skipped: 2, flaky: 0 }),
    "tests: 3 passed, 1 failed, 2 skipped",
  );
  // Flaky tests are never counted as passed: they get a count of their own.
  assert.equal(
    summaryLine({ passed: 3, failed: 0, skipped: 2, flaky: 1 }),
    "tests: 3 passed, 0 failed, 2 skipped, 1 flaky",
  );
  // Planned tests that never reported come last, when there are any.
  assert.equal(
    summaryLine({ passed: 3, failed: 1, skipped: 0, flaky: 0, notRun: 2 }),
    "tests: 3 passed, 1 failed, 0 skipped, 2 not run",
  );
  assert.equal(
    summaryLine({ passed: 3, failed: 1, skipped: 0, flaky: 0, notRun: 0 }),
    "tests: 3 passed, 1 failed, 0 skipped",
  );
});

Deno.test("junit: an ignored step marked not run counts the tests it stands for", () => {
  const xml = REPORT.replace(
    "suite a &gt; one",
    "suite a &gt; 3 not run: 4-6 of 6 [not run]",
  ).replace(
    /(<testcase name="suite a &gt; 3 not run[^>]*>)[\s\S]*?<\/testcase>/,
    "$1<skipped/></testcase>",
  );
  assert.equal(countJunit(xml).notRun, 3);
});

Deno.test("junit: a passing step marked flaky is counted as flaky", () => {
  const xml = REPORT.replace("suite a &gt; one", "suite a &gt; one [flaky]");
  assert.deepEqual(countJunit(xml), { passed: 1, failed: 2, skipped: 1, flaky: 1, notRun: 0 });
});
