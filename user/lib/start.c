/* From the entry code to main, and out through exit. */
#include "ulib.h"

__attribute__((noreturn)) void __ulib_start(long *sp);

__attribute__((noreturn)) void exit(int status)
{
	sys_exit(status);
}

/* sp: the initial stack (argc, argv[], NULL, envp[], NULL). */
__attribute__((noreturn)) void __ulib_start(long *sp)
{
	int argc = (int)sp[0];
	char **argv = (char **)(sp + 1);
	exit(main(argc, argv));
}
