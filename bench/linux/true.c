/*
 * The smallest Linux program: exit(0) from _start, no libc (the Linux side of
 * the spawn_exit_wait row; our side spawns bin/true, which also just exits).
 * Built with gcc -static -nostdlib by tools/bench/linux/run.ts.
 */
void _start(void)
{
	__asm__ volatile("mov $60, %eax\n\txor %edi, %edi\n\tsyscall");
	for (;;)
		;
}
