/**
 * `deno task test`: the Deno front-end's `test` command (tools/cli.ts's
 * table entry; the command itself is app/test_command.ts).
 */
import { runCommandLine } from "./app/command_table.ts";
import { DENO_FRONT } from "./cli.ts";

export {
  countJunit,
  selectsKernelTests,
  summaryLine,
  TEST_SILENCE_MS,
} from "./app/test_command.ts";
export type { Counts } from "./app/test_command.ts";

if (import.meta.main) Deno.exit(await runCommandLine(DENO_FRONT, ["test", ...Deno.args]));
