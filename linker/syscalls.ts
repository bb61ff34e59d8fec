/**
 * The system-call ABI, defined once: numbers, arguments and the calling
 * convention. Generated into the kernel's `syscalls.h` (numbers, handler
 * prototypes, a dispatch-table helper), a NASM include (numbers, table size)
 * and the user programs' `syscall.h` (numbers, errors, constants and one
 * inline stub per call).
 *
 * Convention (the System V AMD64 one Linux uses): `syscall` with the number
 * in rax and arguments in rdi, rsi, rdx, r10, r8, r9; the result comes back
 * in rax, a negative value being -E_x (linker/errors.ts). The CPU clobbers
 * rcx (return address) and r11 (rflags); every other register is preserved.
 */
import { type ErrorCode, ERRORS, renderErrorDefinitions } from "./errors.ts";

/** How an argument travels: integers, or a user pointer (an address the kernel must check). */
export type ArgKind = "int" | "u64" | "i64" | "ptr";

/** One argument of a system call. */
export interface SyscallArg {
  name: string;
  kind: ArgKind;
  /** For `ptr`: the C type user programs pass (the kernel sees a u64 user address). */
  userType?: string;
}

/** One system call. */
export interface Syscall {
  name: string;
  nr: number;
  args: SyscallArg[];
  /** "noreturn": the call does not come back to the caller (exit). */
  returns: "i64" | "noreturn";
  doc: string;
}

/** Numbers set aside for calls not there yet: they return -E_NOSYS until they are. */
export interface ReservedSyscall {
  name: string;
  nr: number;
}

/** Argument registers in order (rcx is taken by `syscall` itself, so r10 stands in). */
export const SYSCALL_ARG_REGISTERS = ["rdi", "rsi", "rdx", "r10", "r8", "r9"] as const;

/** Slots of the dispatch table: every number below it is checked, none above exists. */
export const SYSCALL_TABLE_SIZE = 64;

const int = (name: string): SyscallArg => ({ name, kind: "int" });
const u64 = (name: string): SyscallArg => ({ name, kind: "u64" });
const ptr = (name: string, userType: string): SyscallArg => ({ name, kind: "ptr", userType });

/** Every system call. Number 0 is never used, so a zeroed rax is -E_NOSYS. */
export const SYSCALLS: readonly Syscall[] = [
  {
    name: "exit",
    nr: 1,
    args: [int("status")],
    returns: "noreturn",
    doc: "end the calling process with status (0..255)",
  },
  {
    name: "wait",
    nr: 2,
    args: [int("pid"), ptr("status", "int *")],
    returns: "i64",
    doc: "wait for child pid (WAIT_ANY: any) to end; its pid, status stored if non-NULL",
  },
  {
    name: "spawn",
    nr: 3,
    args: [ptr("path", "const char *"), ptr("argv", "const char *const *")],
    returns: "i64",
    doc: "start the initrd program path with argv (NULL-terminated) in a new process: its pid",
  },
  { name: "getpid", nr: 4, args: [], returns: "i64", doc: "the calling process's pid" },
  { name: "yield", nr: 5, args: [], returns: "i64", doc: "give the CPU to the next ready thread" },
  {
    name: "sleep",
    nr: 6,
    args: [u64("ns")],
    returns: "i64",
    doc: "sleep at least ns nanoseconds of the monotonic clock",
  },
  {
    name: "write",
    nr: 7,
    args: [int("fd"), ptr("buf", "const void *"), u64("len")],
    returns: "i64",
    doc: "write len bytes of buf to fd (STDOUT_FD, STDERR_FD: the console): bytes written",
  },
  {
    name: "mmap",
    nr: 8,
    args: [ptr("addr", "void *"), u64("len"), int("prot"), int("flags")],
    returns: "i64",
    doc: "map len bytes of demand-zero memory with prot (PROT_*) at addr (MAP_FIXED) or anywhere",
  },
  {
    name: "munmap",
    nr: 9,
    args: [ptr("addr", "void *"), u64("len")],
    returns: "i64",
    doc: "unmap [addr, addr+len) and free its frames",
  },
  {
    name: "mprotect",
    nr: 10,
    args: [ptr("addr", "void *"), u64("len"), int("prot")],
    returns: "i64",
    doc: "give [addr, addr+len) the protection prot (PROT_*)",
  },
  {
    name: "clock",
    nr: 11,
    args: [],
    returns: "i64",
    doc: "monotonic clock: nanoseconds since boot",
  },
  // Self-paging (issue 14): numbers 20..39.
  {
    name: "frame_alloc",
    nr: 20,
    args: [int("flags")],
    returns: "i64",
    doc: "take a zeroed frame (FRAME_2M: a 2 MiB run), held read-write: its physical address",
  },
  {
    name: "frame_free",
    nr: 21,
    args: [u64("frame")],
    returns: "i64",
    doc: "give a held frame back (it must not be mapped by the caller)",
  },
  {
    name: "frame_map",
    nr: 22,
    args: [ptr("addr", "void *"), u64("frame"), int("prot"), int("flags")],
    returns: "i64",
    doc: "map a held frame at addr in a self-paged region with prot (FRAME_2M: a 2 MiB page)",
  },
  {
    name: "frame_unmap",
    nr: 23,
    args: [ptr("addr", "void *"), u64("len")],
    returns: "i64",
    doc: "unmap the held frames in [addr, addr+len) of a self-paged region (they stay held)",
  },
  {
    name: "frame_protect",
    nr: 24,
    args: [ptr("addr", "void *"), u64("len"), int("prot")],
    returns: "i64",
    doc: "give the mapped pages of [addr, addr+len) in a self-paged region the protection prot",
  },
  {
    name: "selfpage",
    nr: 25,
    args: [ptr("addr", "void *"), u64("len"), int("flags")],
    returns: "i64",
    doc: "declare len bytes (at addr with MAP_FIXED) self-paged: faults go to the handler",
  },
  {
    name: "fault_handler",
    nr: 26,
    args: [ptr("entry", "void *"), ptr("stack_top", "void *")],
    returns: "i64",
    doc: "faults in self-paged regions enter entry on stack_top (NULL entry: none)",
  },
  {
    name: "fault_resume",
    nr: 27,
    args: [],
    returns: "i64",
    doc: "from the fault handler: resume the interrupted code exactly where it was",
  },
  {
    name: "frame_query",
    nr: 28,
    args: [ptr("addr", "void *"), int("level")],
    returns: "i64",
    doc: "physical address of the frame at addr (level 0) or of its page table (levels 1-4)",
  },
  {
    name: "spawn_grant",
    nr: 29,
    args: [
      ptr("path", "const char *"),
      ptr("argv", "const char *const *"),
      ptr("grants", "const unsigned long *"),
      int("count"),
    ],
    returns: "i64",
    doc: "spawn, giving the child count held frames: grants = {frame, PROT_*} pairs",
  },
];

/** Numbers kept for later calls (copy-on-write fork, exec). */
export const RESERVED_SYSCALLS: readonly ReservedSyscall[] = [
  { name: "fork", nr: 12 },
  { name: "exec", nr: 13 },
];

/** Constants the calls' arguments use. */
export const SYSCALL_CONSTANTS: readonly { name: string; value: number; doc: string }[] = [
  { name: "STDOUT_FD", value: 1, doc: "write: the console" },
  { name: "STDERR_FD", value: 2, doc: "write: the console (diagnostics)" },
  { name: "PROT_NONE", value: 0, doc: "mmap/mprotect: no access" },
  { name: "PROT_READ", value: 1, doc: "mmap/mprotect: readable" },
  { name: "PROT_WRITE", value: 2, doc: "mmap/mprotect: writable" },
  { name: "PROT_EXEC", value: 4, doc: "mmap/mprotect: executable" },
  { name: "MAP_FIXED", value: 1, doc: "mmap: exactly at addr (else addr is ignored)" },
  { name: "WAIT_ANY", value: -1, doc: "wait: any child" },
  { name: "FRAME_2M", value: 1, doc: "frame_alloc, frame_map: a 2 MiB frame or page" },
  { name: "FAULT_RETRY_LIMIT", value: 3, doc: "faults at one place a handler may leave unfixed" },
  {
    name: "WAIT_KILLED",
    value: 0x100,
    doc: "wait: status of a child the kernel killed, ORed with the exception vector (0xff: none)",
  },
];

/** Throw if the table is inconsistent (a number twice, too many arguments, a bad name). */
export function checkSyscalls(
  calls: readonly Syscall[] = SYSCALLS,
  reserved: readonly ReservedSyscall[] = RESERVED_SYSCALLS,
): void {
  const names = new Set<string>();
  const nrs = new Set<number>();
  for (const c of [...calls, ...reserved]) {
    if (!/^[a-z][a-z0-9_]*$/.test(c.name)) throw new Error(`syscall name '${c.name}' is not C`);
    if (!Number.isInteger(c.nr) || c.nr < 1 || c.nr >= SYSCALL_TABLE_SIZE) {
      throw new Error(`syscall ${c.name}: number ${c.nr} is not in 1..${SYSCALL_TABLE_SIZE - 1}`);
    }
    if (names.has(c.name)) throw new Error(`syscall ${c.name} is defined twice`);
    if (nrs.has(c.nr)) throw new Error(`syscall number ${c.nr} is given twice (${c.name})`);
    names.add(c.name);
    nrs.add(c.nr);
  }
  for (const c of calls) {
    if (c.args.length > SYSCALL_ARG_REGISTERS.length) {
      throw new Error(`syscall ${c.name}: ${c.args.length} arguments, at most 6 fit registers`);
    }
    for (const a of c.args) {
      if (a.kind === "ptr" && !a.userType) {
        throw new Error(`syscall ${c.name}: ${a.name} has no type`);
      }
    }
  }
}

const BANNER = "generated from linker/syscalls.ts by tools/build: do not edit";

/** The kernel's C type for an argument (user pointers stay numbers until checked). */
function kernelType(a: SyscallArg): string {
  return { int: "int", u64: "u64", i64: "i64", ptr: "u64" }[a.kind];
}

/** The user programs' C type for an argument. */
function userType(a: SyscallArg): string {
  return a.kind === "ptr" ? a.userType! : { int: "int", u64: "unsigned long", i64: "long" }[a.kind];
}

function constantLines(): string[] {
  return SYSCALL_CONSTANTS.map((k) =>
    `#define ${k.name} ${k.value < 0 ? `(${k.value})` : k.value} /* ${k.doc} */`
  );
}

function numberLines(calls: readonly Syscall[], reserved: readonly ReservedSyscall[]): string[] {
  return [
    ...calls.map((c) => `#define SYS_${c.name} ${c.nr} /* ${c.doc} */`),
    ...reserved.map((c) =>
      `#define SYS_${c.name} ${c.nr} /* reserved: -E_NOSYS until it exists */`
    ),
    `#define SYSCALL_TABLE_SIZE ${SYSCALL_TABLE_SIZE} /* numbers 0..SIZE-1 are looked up */`,
  ];
}

/** The kernel header `syscalls.h`. */
export function renderKernelSyscalls(
  calls: readonly Syscall[] = SYSCALLS,
  reserved: readonly ReservedSyscall[] = RESERVED_SYSCALLS,
): string {
  checkSyscalls(calls, reserved);
  const proto = (c: Syscall) =>
    `i64 sys_${c.name}(${c.args.map((a) => `${kernelType(a)} ${a.name}`).join(", ") || "void"})`;
  const raw = ["a0", "a1", "a2", "a3", "a4", "a5"];
  const adapter = (c: Syscall) => {
    const unused = raw.slice(c.args.length).map((r) => `(void)${r};`).join(" ");
    const call = c.args.map((a, i) => `(${kernelType(a)})${raw[i]}`).join(", ");
    return `\tstatic i64 sys_${c.name}_raw_(u64 a0, u64 a1, u64 a2, u64 a3, u64 a4, u64 a5) ` +
      `{ ${unused} return sys_${c.name}(${call}); } \\`;
  };
  const all = [...calls, ...reserved].sort((a, b) => a.nr - b.nr);
  return [
    `/* ${BANNER} */`,
    "/*",
    " * System calls: rax = number; arguments in rdi, rsi, rdx, r10, r8, r9; result in",
    " * rax (negative: -E_x). Handlers receive user pointers as u64 user addresses: check",
    " * and copy them, never dereference them.",
    " */",
    "#ifndef OUROBOROS_SYSCALLS_H",
    "#define OUROBOROS_SYSCALLS_H",
    "",
    "#include <types.h>",
    "",
    ...numberLines(calls, reserved),
    `#define SYSCALL_ARGS_MAX ${SYSCALL_ARG_REGISTERS.length}`,
    "",
    ...constantLines(),
    "",
    "/* The handlers, one per call (defined by the kernel's system-call code). */",
    ...calls.map((c) => `${proto(c)};`),
    "",
    "/* A dispatch-table entry: the six argument registers, untyped. */",
    "typedef i64 (*syscall_fn)(u64, u64, u64, u64, u64, u64);",
    "",
    "/*",
    " * SYSCALL_DEFINE_TABLE(name) defines `const syscall_fn name[SYSCALL_TABLE_SIZE]`",
    " * with an adapter per call that casts the registers to the handler's types;",
    " * reserved and unused numbers are NULL (the dispatcher returns -E_NOSYS).",
    " */",
    "#define SYSCALL_DEFINE_TABLE(name) \\",
    ...calls.map(adapter),
    "\tconst syscall_fn name[SYSCALL_TABLE_SIZE] = { \\",
    ...calls.map((c) => `\t\t[SYS_${c.name}] = sys_${c.name}_raw_, \\`),
    "\t}",
    "",
    '/* Name of system call nr ("write"), or NULL for a number that is none. */',
    "static inline const char *syscall_name(u64 nr)",
    "{",
    "\tswitch (nr) {",
    ...all.map((c) => `\tcase SYS_${c.name}: return "${c.name}";`),
    "\tdefault: return NULL;",
    "\t}",
    "}",
    "",
    "/* Arguments system call nr takes (0 for reserved and unknown numbers). */",
    "static inline int syscall_nargs(u64 nr)",
    "{",
    "\tswitch (nr) {",
    ...calls.map((c) => `\tcase SYS_${c.name}: return ${c.args.length};`),
    "\tdefault: return 0;",
    "\t}",
    "}",
    "",
    "#endif",
    "",
  ].join("\n");
}

/** The NASM include `syscalls.inc`: numbers and the table size for the entry code. */
export function renderNasmSyscalls(
  calls: readonly Syscall[] = SYSCALLS,
  reserved: readonly ReservedSyscall[] = RESERVED_SYSCALLS,
): string {
  checkSyscalls(calls, reserved);
  return [
    `; ${BANNER}`,
    ...[...calls, ...reserved].map((c) => `%define SYS_${c.name} ${c.nr}`),
    `%define SYSCALL_TABLE_SIZE ${SYSCALL_TABLE_SIZE}`,
    "",
  ].join("\n");
}

/** `syscallN` helpers: inline `syscall` with the arguments in the convention's registers. */
function rawStubs(): string[] {
  const out: string[] = [];
  for (let n = 0; n <= SYSCALL_ARG_REGISTERS.length; n++) {
    const params = ["long nr", ...Array.from({ length: n }, (_, i) => `long a${i}`)];
    out.push(`static inline long syscall${n}(${params.join(", ")})`, "{");
    for (let i = 0; i < n; i++) {
      out.push(`\tregister long r${i} __asm__("${SYSCALL_ARG_REGISTERS[i]}") = a${i};`);
    }
    const inputs = ['"a"(nr)', ...Array.from({ length: n }, (_, i) => `"r"(r${i})`)];
    out.push(
      "\tlong ret;",
      `\t__asm__ volatile("syscall" : "=a"(ret) : ${inputs.join(", ")} : "rcx", "r11", "memory");`,
      "\treturn ret;",
      "}",
      "",
    );
  }
  return out;
}

/** The user programs' header `syscall.h`. */
export function renderUserSyscalls(
  calls: readonly Syscall[] = SYSCALLS,
  reserved: readonly ReservedSyscall[] = RESERVED_SYSCALLS,
  errors: readonly ErrorCode[] = ERRORS,
): string {
  checkSyscalls(calls, reserved);
  const stub = (c: Syscall) => {
    const params = c.args.map((a) => `${userType(a)} ${a.name}`).join(", ") || "void";
    const args = [`SYS_${c.name}`, ...c.args.map((a) => `(long)${a.name}`)].join(", ");
    const call = `syscall${c.args.length}(${args})`;
    return c.returns === "noreturn"
      ? [
        `/* ${c.doc} */`,
        `static inline __attribute__((noreturn)) void sys_${c.name}(${params})`,
        "{",
        `\t${call};`,
        "\t__builtin_unreachable();",
        "}",
        "",
      ]
      : [
        `/* ${c.doc} */`,
        `static inline long sys_${c.name}(${params})`,
        "{",
        `\treturn ${call};`,
        "}",
        "",
      ];
  };
  return [
    `/* ${BANNER} */`,
    "/* System calls for user programs: sys_x() returns the result or -E_x. */",
    "#ifndef OUROBOROS_USER_SYSCALL_H",
    "#define OUROBOROS_USER_SYSCALL_H",
    "",
    ...renderErrorDefinitions(errors),
    "",
    ...numberLines(calls, reserved),
    "",
    ...constantLines(),
    "",
    ...rawStubs(),
    ...calls.flatMap(stub),
    "#endif",
    "",
  ].join("\n");
}
