/**
 * Link, in two passes: the objects with placeholder boot tables, then with
 * the real tables computed from the first image's symbols (generate.ts).
 * The second link must not move a symbol the tables depend on.
 */
import { bootTableNames, type ImageSymbols } from "../../linker/boot_tables.ts";
import { hex } from "../../linker/constants.ts";
import { PAGE_SIZE } from "../../linker/layout.ts";
import { SECTION_SYMBOLS } from "../../linker/linker_script.ts";
import { type ElfImage, parseElf, symbolValue } from "../core/elf.ts";
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { asmStep } from "./compile.ts";
import type { BuildContext } from "./context.ts";
import { generateBootTables, linkerScript } from "./generate.ts";
import { BuildError, runStep, type Step } from "./steps.ts";

const LD_FLAGS = [
  "-nostdlib",
  "-static",
  "-z",
  // Segments aligned to the layout's page size, not ld's default 2 MiB.
  `max-page-size=${hex(PAGE_SIZE)}`,
  "-z",
  "noexecstack",
  "--build-id=none",
];

async function readSymbols(elf: string): Promise<ImageSymbols> {
  return symbolsOf(parseElf(await readFile(elf)));
}

/** The symbols the boot tables are computed from. */
function symbolsOf(image: ElfImage): ImageSymbols {
  const names = [...SECTION_SYMBOLS, "boot_pml4"] as const;
  return Object.fromEntries(names.map((n) => [n, symbolValue(image, n)])) as ImageSymbols;
}

/** The step that assembles the placeholder boot tables (compiled with the sources). */
export function placeholderTablesStep(ctx: BuildContext): Step {
  return asmStep(
    ctx,
    join(ctx.gen, "boot_tables_pass1.asm"),
    join(ctx.obj, "boot_tables_pass1.o"),
    "boot tables (placeholder)",
  );
}

/** What the link made. */
export interface LinkResult {
  elf: string;
  /** True when either pass linked. */
  linked: boolean;
  /** Labels of the steps this phase assembled (the real boot tables). */
  assembled: string[];
  /** The linked image, as read for the checks below. */
  image: ElfImage;
}

/** Link `objects` with the placeholder tables `pass1Tables`, then with the real ones. */
export async function link(
  ctx: BuildContext,
  objects: readonly string[],
  pass1Tables: string,
): Promise<LinkResult> {
  const { root, out, log } = ctx;
  const script = linkerScript(ctx);
  const linkStep = (tables: string, elf: string, label: string): Step => ({
    output: elf,
    command: ["ld", ...LD_FLAGS, "-T", script, "-o", elf, ...objects, tables],
    inputs: [script, ...objects, tables],
    label,
    toolId: ctx.ids.ld,
  });
  const pass1 = join(out, "kernel.pass1.elf");
  const linked1 = await runStep(linkStep(pass1Tables, pass1, "link (pass 1)"), root);
  if (linked1) log("build link (pass 1)");

  const sym1 = await readSymbols(pass1);
  const tablesSource = await generateBootTables(ctx, sym1);
  const tables = asmStep(ctx, tablesSource, join(ctx.obj, "boot_tables.o"), "boot tables");
  const assembled: string[] = [];
  if (await runStep(tables, root)) assembled.push(tables.label);

  const elf = join(out, "kernel.elf");
  const linked = await runStep(linkStep(tables.output, elf, "link"), root);
  // Read once, for both checks below (and the caller's: BuildResult.image).
  const image = parseElf(await readFile(elf));
  if (linked) {
    log("build link");
    const sym2 = symbolsOf(image);
    const moved = Object.keys(sym1).filter((k) =>
      sym1[k as keyof ImageSymbols] !== sym2[k as keyof ImageSymbols]
    );
    if (moved.length) {
      await rm(elf);
      throw new BuildError(elf, `symbols moved between link passes: ${moved.join(", ")}`);
    }
  }
  // Sanity: every table label the generator knows is in the image.
  for (const n of bootTableNames(ctx.layout)) symbolValue(image, n);
  return { elf, linked: linked || linked1, assembled, image };
}
