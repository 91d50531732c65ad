/* snapctl version */
#include <json-c/json.h>
#include <string.h>

#include "cli.h"
#include "config.h"

int
cli_cmd_version(struct cli_ctx *ctx, int argc, char **argv)
{
	bool json = argc > 1 && strcmp(argv[1], "--json") == 0;
	if (argc > 1 && !json)
		return cli_usage("version takes no arguments but --json");
	if (json) {
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "version", json_object_new_string(SNAPCTL_VERSION));
		cli_json_print(o);
	} else {
		printf("snapctl %s\n", SNAPCTL_VERSION);
	}
	return CLI_EXIT_OK;
}
