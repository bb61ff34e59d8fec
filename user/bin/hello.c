/* The smallest useful program: greets on the console with its pid and arguments. */
#include "ulib.h"

int main(int argc, char **argv)
{
	printf("hello from user space: pid %ld, %d argument%s", sys_getpid(), argc,
	       argc == 1 ? "" : "s");
	for (int i = 0; i < argc; i++)
		printf(" '%s'", argv[i]);
	printf("\n");
	return 0;
}
