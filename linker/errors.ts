/**
 * The error numbers, defined once: kernel functions and system calls return
 * them negated (-E_FAULT). Generated into the kernel's `errors.h` (included
 * by types.h) and into the user programs' `syscall.h`, so a user test can
 * compare what a system call returned with the kernel's own name for it.
 *
 * Numbers never change once given (user programs are compiled against them);
 * new errors take new numbers.
 */

/** One error: its name without the `E_` prefix, its number, and what it means. */
export interface ErrorCode {
  name: string;
  nr: number;
  doc: string;
}

/** Every error, in number order. */
export const ERRORS: readonly ErrorCode[] = [
  { name: "INVAL", nr: 1, doc: "an argument is malformed" },
  { name: "NOSPC", nr: 2, doc: "no room left (window, buffer, table)" },
  { name: "NOENT", nr: 3, doc: "no such thing (option, test, tag, file)" },
  { name: "RANGE", nr: 4, doc: "a value is outside what can be represented" },
  { name: "NOMEM", nr: 5, doc: "out of physical frames" },
  { name: "DOUBLE", nr: 6, doc: "freed twice" },
  { name: "EXIST", nr: 7, doc: "already mapped" },
  { name: "ALIGN", nr: 8, doc: "misaligned address or size" },
  { name: "CANON", nr: 9, doc: "non-canonical address" },
  { name: "SELFMAP", nr: 10, doc: "inside a page-table window (self-map)" },
  { name: "HUGE", nr: 11, doc: "a parent entry is a huge page" },
  { name: "NOTMAPPED", nr: 12, doc: "nothing mapped there" },
  // System calls and processes.
  {
    name: "FAULT",
    nr: 13,
    doc: "a user pointer is not a mapped user address with the needed rights",
  },
  { name: "NOSYS", nr: 14, doc: "no such system call" },
  { name: "CHILD", nr: 15, doc: "no child process to wait for" },
  { name: "SRCH", nr: 16, doc: "no such process" },
  { name: "BADF", nr: 17, doc: "bad file descriptor" },
  { name: "TOOBIG", nr: 18, doc: "argument list or string too long" },
  { name: "PERM", nr: 19, doc: "operation not permitted" },
  // ELF programs (kernel/proc/elf.c): one error per way a program is refused.
  { name: "ELF_MAGIC", nr: 32, doc: "not an ELF file (bad magic)" },
  { name: "ELF_CLASS", nr: 33, doc: "not ELF64 little-endian version 1" },
  { name: "ELF_MACHINE", nr: 34, doc: "not an x86-64 program" },
  { name: "ELF_TYPE", nr: 35, doc: "not an executable (ET_EXEC)" },
  { name: "ELF_BOUNDS", nr: 36, doc: "headers or segment data outside the file" },
  { name: "ELF_OVERLAP", nr: 37, doc: "two loadable segments overlap" },
  { name: "ELF_KERNEL", nr: 38, doc: "a segment lies in the kernel half" },
  { name: "ELF_RANGE", nr: 39, doc: "a segment lies outside the user program area" },
  { name: "ELF_FILESZ", nr: 40, doc: "a segment's file size exceeds its memory size" },
  {
    name: "ELF_ALIGN",
    nr: 41,
    doc: "a segment's offset and address disagree modulo its alignment",
  },
  { name: "ELF_ENTRY", nr: 42, doc: "the entry point is outside every executable segment" },
  { name: "ELF_SIZE", nr: 43, doc: "an absurd size (overflow, wrap, bad header size)" },
  { name: "ELF_PHNUM", nr: 44, doc: "no loadable segment, or too many segments" },
  // Self-paging (kernel/proc/frames.c, upcall.c): one error per refusal of the frame calls.
  { name: "NOTHELD", nr: 80, doc: "the caller holds no such frame" },
  { name: "FRAME_OTHER", nr: 81, doc: "the frame is held by another process" },
  { name: "FRAME_KERNEL", nr: 82, doc: "the frame is the kernel's (image, boot data, not RAM)" },
  { name: "FRAME_PT", nr: 83, doc: "the frame is a page table" },
  { name: "KERNADDR", nr: 84, doc: "the address lies in the kernel half" },
  { name: "READONLY", nr: 85, doc: "a writable mapping of a frame held read-only" },
  { name: "WRAP", nr: 86, doc: "the range wraps around the end of the address space" },
  { name: "NOCONTIG", nr: 87, doc: "no physically contiguous, aligned 2 MiB run was found" },
  { name: "NOTSELFPAGED", nr: 88, doc: "the address is not in a self-paged region" },
  { name: "MAPPED", nr: 89, doc: "the frame is still mapped by its holder" },
  { name: "NOFAULT", nr: 90, doc: "resume with no fault being handled" },
  // cpio newc archives (kernel/lib/cpio.c).
  { name: "CPIO_MAGIC", nr: 48, doc: "not a cpio newc header (bad magic)" },
  { name: "CPIO_FIELD", nr: 49, doc: "a cpio header field is not hexadecimal" },
  { name: "CPIO_BOUNDS", nr: 50, doc: "a cpio name or file runs past the archive's end" },
  { name: "CPIO_NAME", nr: 51, doc: "a cpio name is empty or not NUL-terminated" },
  { name: "CPIO_TRAILER", nr: 52, doc: "a cpio archive ends without its trailer" },
  // SMP (kernel/arch/x86_64/smp.c).
  { name: "TIMEDOUT", nr: 64, doc: "another CPU did not answer in time" },
];

/** Highest error number plus one (the size of a table indexed by number). */
export function errorLimit(errors: readonly ErrorCode[] = ERRORS): number {
  return Math.max(...errors.map((e) => e.nr)) + 1;
}

/** Throw if two errors share a name or a number, or a number is not positive. */
export function checkErrors(errors: readonly ErrorCode[] = ERRORS): void {
  const names = new Set<string>();
  const nrs = new Set<number>();
  for (const e of errors) {
    if (!/^[A-Z][A-Z0-9_]*$/.test(e.name)) throw new Error(`error name '${e.name}' is not E_-able`);
    if (!Number.isInteger(e.nr) || e.nr < 1 || e.nr > 4095) {
      throw new Error(`error ${e.name}: number ${e.nr} is not in 1..4095`);
    }
    if (names.has(e.name)) throw new Error(`error ${e.name} is defined twice`);
    if (nrs.has(e.nr)) throw new Error(`error number ${e.nr} is given twice (${e.name})`);
    names.add(e.name);
    nrs.add(e.nr);
  }
}

/** The `#define E_x n` lines and an `error_name()` lookup, shared by both headers. */
export function renderErrorDefinitions(errors: readonly ErrorCode[] = ERRORS): string[] {
  checkErrors(errors);
  const lines: string[] = [];
  const width = Math.max(...errors.map((e) => e.name.length)) + 2;
  for (const e of errors) {
    lines.push(`#define E_${e.name.padEnd(width)} ${e.nr} /* ${e.doc} */`);
  }
  lines.push(
    `#define E_LIMIT ${errorLimit(errors)} /* highest error number + 1 */`,
    "",
    '/* "E_FAULT" for -E_FAULT or E_FAULT; NULL for a number that is no error. */',
    "static inline const char *error_name(long long err)",
    "{",
    "\tswitch (err < 0 ? -err : err) {",
  );
  for (const e of errors) lines.push(`\tcase E_${e.name}: return "E_${e.name}";`);
  lines.push("\tdefault: return (const char *)0;", "\t}", "}");
  return lines;
}

/** The kernel header `errors.h`. */
export function renderKernelErrors(errors: readonly ErrorCode[] = ERRORS): string {
  return [
    "/* generated from linker/errors.ts by tools/build: do not edit */",
    "/* Error numbers: kernel functions and system calls return them negated. */",
    "#ifndef OUROBOROS_ERRORS_H",
    "#define OUROBOROS_ERRORS_H",
    "",
    ...renderErrorDefinitions(errors),
    "",
    "#endif",
    "",
  ].join("\n");
}
