/* Exits with 0 at once: the smallest program, for spawn/exit/wait cycles and their cost. */
#include "ulib.h"

int main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return 0;
}
