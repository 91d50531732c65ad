/*
 * Drives the executor for executor.sh: one bld_exec_run() (or several at
 * once, from threads, with --parallel) with the spec taken from the command
 * line, printing what the executor reports:
 *
 *   out: LINE / err: LINE   each line passed to spec->output, in order
 *   exit: N                 ret->exit_code
 *   tail: LINE              each line of ret->tail
 *   error: ENAME: MESSAGE   when bld_exec_run() fails (exit status 1)
 *   cancel-ms: N            with --cancel-after, from setting the flag to the return
 *
 * With --parallel N every line is prefixed "[k] " (k = 0..N-1) and run k
 * uses container id ID-k, bundle folder BUNDLE/k and rootfs ROOTFS/k (as
 * steps do: each has its own snapshot).
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "executor.h"

#define MAX_LIST 64

static pthread_mutex_t print_lock = PTHREAD_MUTEX_INITIALIZER;

struct job {
	int index; /* -1 when alone */
	struct bld_exec_spec spec;
	char id[256];
	char bundle[4096];
	char rootfs[4096];
	long cancel_after_ms;
	atomic_bool cancel;
	uint64_t canceled_at_ms, returned_at_ms;
	int rc;
	struct bld_exec_result res;
	struct sc_err err;
};

static uint64_t
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void
prefix(const struct job *j)
{
	if (j->index >= 0)
		printf("[%d] ", j->index);
}

static void
on_output(void *arg, int stream, const char *line, size_t len)
{
	const struct job *j = arg;
	pthread_mutex_lock(&print_lock);
	prefix(j);
	printf("%s: %.*s\n",
	       stream == 1   ? "out"
	       : stream == 2 ? "err"
			     : "bad-stream",
	       (int)len, line);
	fflush(stdout);
	pthread_mutex_unlock(&print_lock);
}

static void *
canceler(void *arg)
{
	struct job *j = arg;
	struct timespec ts = {j->cancel_after_ms / 1000, (j->cancel_after_ms % 1000) * 1000000};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
	j->canceled_at_ms = now_ms();
	atomic_store(&j->cancel, true);
	return NULL;
}

static void *
run_job(void *arg)
{
	struct job *j = arg;
	pthread_t t;
	bool timer = false;
	if (j->cancel_after_ms >= 0) {
		j->spec.cancel = &j->cancel;
		timer = pthread_create(&t, NULL, canceler, j) == 0;
	}
	j->rc = bld_exec_run(&j->spec, &j->res, &j->err);
	j->returned_at_ms = now_ms();
	if (timer)
		pthread_join(t, NULL);
	return NULL;
}

static int
report(struct job *j)
{
	pthread_mutex_lock(&print_lock);
	int status = 0;
	if (j->rc < 0) {
		prefix(j);
		printf("error: %s: %s\n", strerrorname_np(-j->rc), sc_err_msg(&j->err));
		status = 1;
	} else {
		prefix(j);
		printf("exit: %d\n", j->res.exit_code);
		char *save = NULL;
		for (char *l = strtok_r(j->res.tail, "\n", &save); l;
		     l = strtok_r(NULL, "\n", &save)) {
			prefix(j);
			printf("tail: %s\n", l);
		}
	}
	if (j->cancel_after_ms >= 0 && j->canceled_at_ms) {
		prefix(j);
		printf("cancel-ms: %llu\n",
		       (unsigned long long)(j->returned_at_ms - j->canceled_at_ms));
	}
	fflush(stdout);
	pthread_mutex_unlock(&print_lock);
	bld_exec_result_clear(&j->res);
	return status;
}

static void
usage(void)
{
	fprintf(stderr,
		"usage: exec-run --rootfs DIR --bundle DIR --id ID [--runtime R] [--cwd P]\n"
		"         [--user U] [--network none|host] [--hostname H] [--env K=V]...\n"
		"         [--mount bind:SRC:DST[:ro] | tmpfs::DST[:ro]]... [--cancel-after MS]\n"
		"         [--parallel N] -- ARGV...\n"
		"       exec-run --check [--runtime R]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"rootfs", required_argument, NULL, 'r'},
		{"bundle", required_argument, NULL, 'b'},
		{"id", required_argument, NULL, 'i'},
		{"runtime", required_argument, NULL, 'R'},
		{"cwd", required_argument, NULL, 'c'},
		{"user", required_argument, NULL, 'u'},
		{"network", required_argument, NULL, 'n'},
		{"hostname", required_argument, NULL, 'h'},
		{"env", required_argument, NULL, 'e'},
		{"mount", required_argument, NULL, 'm'},
		{"cancel-after", required_argument, NULL, 'C'},
		{"parallel", required_argument, NULL, 'p'},
		{"check", no_argument, NULL, 'k'},
		{NULL, 0, NULL, 0},
	};
	struct bld_exec_spec spec = {.network = BLD_NETWORK_NONE};
	const char *env[MAX_LIST];
	struct bld_exec_mount mounts[MAX_LIST];
	const char *bundle = NULL;
	long cancel_after = -1, parallel = 0;
	bool check = false;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			spec.rootfs = optarg;
			break;
		case 'b':
			bundle = optarg;
			break;
		case 'i':
			spec.id = optarg;
			break;
		case 'R':
			spec.runtime = optarg;
			break;
		case 'c':
			spec.cwd = optarg;
			break;
		case 'u':
			spec.user = optarg;
			break;
		case 'n':
			if (bld_network_from_string(optarg, &spec.network) < 0)
				usage();
			break;
		case 'h':
			spec.hostname = optarg;
			break;
		case 'e':
			if (spec.nenv == MAX_LIST)
				usage();
			env[spec.nenv++] = optarg;
			break;
		case 'm': {
			if (spec.nmounts == MAX_LIST)
				usage();
			/* type:source:target[:ro] */
			char *type = optarg, *src = strchr(type, ':'), *dst, *ro;
			if (!src)
				usage();
			*src++ = '\0';
			dst = strchr(src, ':');
			if (!dst)
				usage();
			*dst++ = '\0';
			ro = strchr(dst, ':');
			if (ro)
				*ro++ = '\0';
			mounts[spec.nmounts++] = (struct bld_exec_mount){
				.type = type,
				.source = *src ? src : NULL,
				.target = dst,
				.readonly = ro && strcmp(ro, "ro") == 0,
			};
			break;
		}
		case 'C':
			cancel_after = strtol(optarg, NULL, 10);
			break;
		case 'p':
			parallel = strtol(optarg, NULL, 10);
			if (parallel < 1 || parallel > 32)
				usage();
			break;
		case 'k':
			check = true;
			break;
		default:
			usage();
		}
	}

	if (check) {
		struct sc_err err = SC_ERR_INIT;
		int r = bld_exec_runtime_check(spec.runtime, &err);
		if (r < 0) {
			printf("error: %s: %s\n", strerrorname_np(-r), sc_err_msg(&err));
			return 1;
		}
		printf("ok\n");
		return 0;
	}

	if (!spec.rootfs || !bundle || !spec.id || optind >= argc)
		usage();
	spec.argv = (const char *const *)argv + optind;
	spec.argc = (size_t)(argc - optind);
	spec.env = env;
	spec.mounts = mounts;
	spec.output = on_output;

	size_t njobs = parallel > 0 ? (size_t)parallel : 1;
	struct job *jobs = calloc(njobs, sizeof(*jobs));
	pthread_t *threads = calloc(njobs, sizeof(*threads));
	if (!jobs || !threads)
		return 1;
	for (size_t k = 0; k < njobs; k++) {
		struct job *j = &jobs[k];
		j->index = parallel > 0 ? (int)k : -1;
		j->spec = spec;
		j->cancel_after_ms = cancel_after;
		atomic_init(&j->cancel, false);
		if (parallel > 0) {
			snprintf(j->id, sizeof(j->id), "%s-%zu", spec.id, k);
			snprintf(j->bundle, sizeof(j->bundle), "%s/%zu", bundle, k);
			snprintf(j->rootfs, sizeof(j->rootfs), "%s/%zu", spec.rootfs, k);
			if (mkdir(j->bundle, 0700) < 0 && errno != EEXIST) {
				perror(j->bundle);
				return 1;
			}
		} else {
			snprintf(j->id, sizeof(j->id), "%s", spec.id);
			snprintf(j->bundle, sizeof(j->bundle), "%s", bundle);
			snprintf(j->rootfs, sizeof(j->rootfs), "%s", spec.rootfs);
		}
		j->spec.rootfs = j->rootfs;
		j->spec.id = j->id;
		j->spec.bundle_dir = j->bundle;
		j->spec.output_arg = j;
	}
	for (size_t k = 0; k < njobs; k++)
		if (pthread_create(&threads[k], NULL, run_job, &jobs[k]) != 0)
			return 1;
	int status = 0;
	for (size_t k = 0; k < njobs; k++) {
		pthread_join(threads[k], NULL);
		if (report(&jobs[k]))
			status = 1;
	}
	free(jobs);
	free(threads);
	return status;
}
