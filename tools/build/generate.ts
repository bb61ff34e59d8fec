/**
 * Generate: the files the sources and the linker include, all from the
 * layout (one fact, one place): the C header, the NASM include, the linker
 * script, and the boot page tables (placeholders for the first link, the
 * real ones from its symbols for the second). Written only when changed, so
 * their consumers' keys stay put.
 */
import {
  computeBootTables,
  type ImageSymbols,
  placeholderBootTables,
  renderBootTables,
} from "../../linker/boot_tables.ts";
import { renderCHeader, renderNasmInclude } from "../../linker/constants.ts";
import { renderLinkerScript } from "../../linker/linker_script.ts";
import { join } from "node:path";
import type { BuildContext } from "./context.ts";
import { writeIfChanged } from "./steps.ts";

/** The linker script's path. */
export function linkerScript(ctx: BuildContext): string {
  return join(ctx.gen, "kernel.ld");
}

/** Write the layout's files and the placeholder boot tables. */
export async function generate(ctx: BuildContext): Promise<void> {
  await writeIfChanged(join(ctx.gen, "layout.h"), renderCHeader(ctx.layout));
  await writeIfChanged(join(ctx.gen, "layout.inc"), renderNasmInclude(ctx.layout));
  await writeIfChanged(linkerScript(ctx), renderLinkerScript(ctx.layout));
  await writeIfChanged(
    join(ctx.gen, "boot_tables_pass1.asm"),
    renderBootTables(placeholderBootTables(ctx.layout)),
  );
}

/** Write the real boot tables from the first link's symbols; returns their source. */
export async function generateBootTables(
  ctx: BuildContext,
  symbols: ImageSymbols,
): Promise<string> {
  const path = join(ctx.gen, "boot_tables.asm");
  await writeIfChanged(path, renderBootTables(computeBootTables(ctx.layout, symbols)));
  return path;
}
