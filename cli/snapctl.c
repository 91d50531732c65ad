#include "cli.h"
int
main(void)
{
	return 0;
}
