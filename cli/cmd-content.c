/* snapctl content: placeholder until the images work lands. */
#include "cli.h"

int
cli_cmd_content(struct cli_ctx *ctx, int argc, char **argv)
{
	return cli_error("content: not available yet");
}
