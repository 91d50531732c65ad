#include "tap.h"
TEST(placeholder)
{
	ASSERT_TRUE(1);
}
int
main(int argc, char **argv)
{
	return tap_main(argc, argv);
}
