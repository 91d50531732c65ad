/* snapctl dockerfile: placeholder until the frontend lands. */
#include "cli.h"

int
cli_cmd_dockerfile(struct cli_ctx *ctx, int argc, char **argv)
{
	(void)ctx;
	(void)argc;
	(void)argv;
	return cli_error("dockerfile: not built yet");
}
