/*
 * Tiny ring-3 programs written inline for the kernel tests: BLOB puts the
 * machine code of `body` in .rodata between name[] and name_end[];
 * SYSCALL and EXIT_WITH spell the system calls (numbers from syscalls.h).
 */
#ifndef OUROBOROS_TESTS_USER_BLOB_H
#define OUROBOROS_TESTS_USER_BLOB_H

#include <sched.h>
#include <smp.h>
#include <syscalls.h>
#include <timer.h>

#define STR_(x) #x
#define STR(x) STR_(x)

#define BLOB(name, body)                                              \
	__asm__(".pushsection .rodata\n"                              \
		".globl " #name "\n" #name ":\n" body "\n"            \
		".globl " #name "_end\n" #name "_end:\n"              \
		".popsection\n");                                     \
	extern const u8 name[], name##_end[]

#define SYSCALL(nr) "mov $" STR(nr) ", %eax\n syscall\n"
#define EXIT_WITH(code) "mov $" #code ", %edi\n" SYSCALL(SYS_exit)

/*
 * One step of a test thread's wait for its programs to reach a state (asleep,
 * waiting): with one CPU, let them run (yield); with more, sleep a tick with
 * interrupts on, since a CPU spinning with them off never answers another
 * CPU's TLB shootdown.
 */
static inline void blob_wait_step(void)
{
	if (smp_cpu_count() < 2)
		sched_yield();
	else
		sched_sleep_ns(NS_PER_SEC / TIMER_HZ);
}

#endif
