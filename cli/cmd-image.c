/* snapctl image: placeholder until the images work lands. */
#include "cli.h"

int
cli_cmd_image(struct cli_ctx *ctx, int argc, char **argv)
{
	return cli_error("image: not available yet");
}
