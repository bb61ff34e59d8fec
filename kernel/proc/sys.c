/*
 * The system calls' handlers (prototypes generated from linker/syscalls.ts
 * into syscalls.h). User pointers arrive as numbers and go through
 * uaccess.h; nothing here dereferences one.
 */
#include <cpio.h>
#include <initrd.h>
#include <layout.h>
#include <paging.h>
#include <printf.h>
#include <proc.h>
#include <sched.h>
#include <selfpage.h>
#include <serial.h>
#include <string.h>
#include <syscalls.h>
#include <timer.h>
#include <uaccess.h>
#include <user_tests.h>
#include <vmm.h>

/* Longest program path, most arguments, and the bytes all argument strings may take. */
#define SPAWN_PATH_MAX 128
#define SPAWN_ARGS_MAX 32
#define SPAWN_STRINGS_MAX 2048
/* Bytes write copies at a time (a kernel-stack buffer). */
#define WRITE_CHUNK 256

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
		/* The test runner's line buffers are shared by a program's processes, too. */
		bool took = console_enter();
		if (!user_tests_write(sched_current(), chunk, n))
			serial_write(chunk, n);
		console_leave(took);
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
	int word = info.killed ? WAIT_KILLED | (int)(info.vector & 0xff) : info.status;
	if (status && copy_to_user(status, &word, sizeof(word)) != 0)
		return -E_FAULT;
	return got;
}

/* The rights of PROT_* bits (they are the same bits), or -1 for unknown bits. */
static int prot_rights(int prot)
{
	return (prot & ~REGION_RIGHTS) ? -1 : prot;
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
	/* Held frames in self-paged parts are unmapped, not freed: they stay held. */
	if (IS_ALIGNED(addr, PAGE_SIZE) && len && selfpage_overlaps(addr, len))
		selfpage_unmap_range(addr, len);
	return proc_munmap(addr, len);
}

i64 sys_mprotect(u64 addr, u64 len, int prot)
{
	int rights = prot_rights(prot);
	if (rights < 0)
		return -E_INVAL;
	/* Self-paged pages change rights by frame_protect, which checks the holdings. */
	if (selfpage_overlaps(addr, len))
		return -E_PERM;
	return proc_mprotect(addr, len, (u32)rights);
}

/*
 * The last program found, by its path as given: the initrd is mapped once,
 * read-only, and never changes, so the same path finds the same entry (a
 * walk of the archive parses every header before it: thousands of
 * instructions a spawn). Under the load lock.
 */
static char found_path[SPAWN_PATH_MAX];
static struct cpio_file found;

/* find_program under the load lock. */
static int find_locked(const char *path, struct cpio_file *f)
{
	const void *archive;
	u64 len;
	int err = initrd_get(&archive, &len);
	if (err)
		return err;
	if (found.name && strcmp(path, found_path) == 0) {
		*f = found;
		return 0;
	}
	if ((err = cpio_find(archive, len, path, f)) != 0)
		return err;
	if ((f->mode & CPIO_MODE_TYPE) != CPIO_MODE_FILE)
		return -E_NOENT;
	if (strlcpy(found_path, path, sizeof(found_path)) < sizeof(found_path))
		found = *f;
	else
		found.name = NULL; /* too long to keep: not remembered */
	return 0;
}

/* The initrd's regular file path: 0 and *f set, or -E_x. */
static int find_program(const char *path, struct cpio_file *f)
{
	bool took = load_enter();
	int err = find_locked(path, f);
	load_leave(took);
	return err;
}

/* A program's name: the last part of its path. */
static const char *base_name(const char *path)
{
	const char *base = strrchr(path, '/');
	return base ? base + 1 : path;
}

int proc_spawn_path(const char *path, int argc, const char *const *argv)
{
	struct cpio_file f;
	int err = find_program(path, &f);
	return err ? err : proc_spawn_elf(f.data, f.size, base_name(path), argc, argv);
}

int proc_exec_path(const char *path, int argc, const char *const *argv)
{
	struct cpio_file f;
	int err = find_program(path, &f);
	return err ? err : proc_exec_elf(f.data, f.size, base_name(path), argc, argv);
}

/* A path and an argv from user space, copied (static buffers: under the load lock). */
static char kpath[SPAWN_PATH_MAX], strings[SPAWN_STRINGS_MAX];
static const char *args[SPAWN_ARGS_MAX + 1];

/* Copy path and argv in: argc, or -E_FAULT, -E_TOOBIG. */
static int copy_program_args(u64 path, u64 argv)
{
	i64 n = strncpy_from_user(kpath, path, sizeof(kpath));
	if (n < 0)
		return (int)n;
	int argc = 0;
	u64 used = 0;
	for (;; argc++) {
		u64 uarg;
		if (copy_from_user(&uarg, argv + (u64)argc * sizeof(u64), sizeof(uarg)) != 0)
			return -E_FAULT;
		if (!uarg)
			break;
		if (argc == SPAWN_ARGS_MAX)
			return -E_TOOBIG;
		i64 k = strncpy_from_user(strings + used, uarg, sizeof(strings) - used);
		if (k < 0)
			return (int)k;
		args[argc] = strings + used;
		used += (u64)k + 1;
	}
	args[argc] = NULL;
	return argc;
}

i64 sys_spawn(u64 path, u64 argv)
{
	bool took = load_enter();
	int argc = copy_program_args(path, argv);
	i64 ret = argc < 0 ? argc : proc_spawn_path(kpath, argc, args);
	load_leave(took);
	return ret;
}

i64 sys_exec(u64 path, u64 argv)
{
	bool took = load_enter();
	int argc = copy_program_args(path, argv);
	i64 ret = argc < 0 ? argc : proc_exec_path(kpath, argc, args);
	load_leave(took);
	return ret;
}

i64 sys_fork(void)
{
	return proc_fork();
}
