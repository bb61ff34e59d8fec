/*
 * The system calls' handlers (prototypes generated from linker/syscalls.ts
 * into syscalls.h). User pointers arrive as numbers and go through
 * uaccess.h; nothing here dereferences one.
 */
#include <layout.h>
#include <paging.h>
#include <proc.h>
#include <sched.h>
#include <serial.h>
#include <syscalls.h>
#include <timer.h>
#include <uaccess.h>
#include <vmm.h>

/* Bytes write copies at a time (a kernel-stack buffer). */
#define WRITE_CHUNK 256
/* What wait stores for a killed child: WAIT_KILLED_FLAG | the fault's vector (or 0xff). */
#define WAIT_KILLED_FLAG 0x100

i64 sys_exit(int status)
{
	proc_exit(status & 0xff);
}

i64 sys_getpid(void)
{
	return sched_current()->pid;
}

i64 sys_yield(void)
{
	sched_yield();
	return 0;
}

i64 sys_sleep(u64 ns)
{
	sched_sleep_ns(ns);
	return 0;
}

i64 sys_clock(void)
{
	return (i64)clock_ns();
}

i64 sys_write(int fd, u64 buf, u64 len)
{
	if (fd != STDOUT_FD && fd != STDERR_FD)
		return -E_BADF;
	if (!user_range_ok(buf, len, REGION_READ))
		return -E_FAULT;
	char chunk[WRITE_CHUNK];
	for (u64 done = 0; done < len;) {
		u64 n = len - done < WRITE_CHUNK ? len - done : WRITE_CHUNK;
		if (copy_from_user(chunk, buf + done, n) != 0)
			return done ? (i64)done : -E_FAULT;
		for (u64 i = 0; i < n; i++)
			serial_putc(chunk[i]);
		done += n;
	}
	return (i64)len;
}

i64 sys_wait(int pid, u64 status)
{
	struct exit_info info;
	if (status && !user_range_ok(status, sizeof(int), REGION_WRITE))
		return -E_FAULT;
	int got = proc_wait(pid, &info);
	if (got < 0)
		return got;
	int word = info.killed ? WAIT_KILLED_FLAG | (int)(info.vector & 0xff) : info.status;
	if (status && copy_to_user(status, &word, sizeof(word)) != 0)
		return -E_FAULT;
	return got;
}

/* REGION_* rights for PROT_* bits: -1 for unknown bits. */
static int prot_rights(int prot)
{
	if (prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC))
		return -1;
	return ((prot & PROT_READ) ? REGION_READ : 0) | ((prot & PROT_WRITE) ? REGION_WRITE : 0) |
	       ((prot & PROT_EXEC) ? REGION_EXEC : 0);
}

i64 sys_mmap(u64 addr, u64 len, int prot, int flags)
{
	int rights = prot_rights(prot);
	if (rights < 0 || (flags & ~MAP_FIXED))
		return -E_INVAL;
	return proc_mmap(addr, len, (u32)rights, flags & MAP_FIXED);
}

i64 sys_munmap(u64 addr, u64 len)
{
	return proc_munmap(addr, len);
}

i64 sys_mprotect(u64 addr, u64 len, int prot)
{
	int rights = prot_rights(prot);
	if (rights < 0)
		return -E_INVAL;
	return proc_mprotect(addr, len, (u32)rights);
}

i64 sys_spawn(u64 path, u64 argv)
{
	(void)path;
	(void)argv;
	return -E_NOSYS;
}
