/**
 * What every phase of a build shares: where it reads and writes, the
 * layout, and the tools (each with its identity, part of every key).
 */
import type { Layout } from "../../linker/layout.ts";
import type { ToolIds } from "./steps.ts";

export interface BuildContext {
  /** Repository root: commands run here, labels are relative to it. */
  root: string;
  /** Kernel sources (`<root>/kernel` unless the project says otherwise). */
  kernelDir: string;
  /** Output directory; generated files in `gen`, objects in `obj`. */
  out: string;
  gen: string;
  obj: string;
  layout: Layout;
  cc: string;
  /** Extra C flags of this build. */
  extraCFlags: readonly string[];
  /** The identities of the C compiler, NASM, ld and strip (steps.ts buildToolIds). */
  ids: ToolIds;
  log: (line: string) => void;
}
