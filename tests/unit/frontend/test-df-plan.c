/* Stage graph and ARG/ENV scoping across stages. */
#include <stdlib.h>
#include <string.h>

#include "plan.h"
#include "tap.h"

static struct bld_dockerfile *df;
static struct bld_plan *plan;
static char errbuf[SC_ERR_MSG_MAX];

static void
reset(void)
{
	plan = bld_plan_free(plan);
	df = bld_dockerfile_free(df);
}

/* Plans text; NULL with errbuf set on failure. */
static struct bld_plan *
mk(const char *text, const char *target, const char *const *bargs, size_t nbargs)
{
	reset();
	struct sc_err err = SC_ERR_INIT;
	struct bld_plan_opts o = {.target = target,
				  .build_args = bargs,
				  .nbuild_args = nbargs,
				  .build_platform = "linux/amd64",
				  .target_platform = "linux/arm64/v8"};
	if (bld_dockerfile_parse(text, strlen(text), "Dockerfile", &df, &err) < 0 ||
	    bld_plan_new(df, &o, &plan, &err) < 0) {
		snprintf(errbuf, sizeof(errbuf), "%s", sc_err_msg(&err));
		return NULL;
	}
	return plan;
}

static const struct bld_step *
step(unsigned stage, size_t i)
{
	return &plan->stages[stage].steps[i];
}

TEST(global_args_in_from_only)
{
	ASSERT_NOT_NULL(mk("ARG BASE=alpine\nARG TAG=3.19\n"
			   "FROM $BASE:${TAG} AS one\n"
			   "LABEL base=\"$BASE\"\n"
			   "ARG BASE\n"
			   "LABEL base2=$BASE\n",
			   NULL, NULL, 0));
	ASSERT_EQ(plan->nmeta_args, 2);
	ASSERT_STREQ(plan->stages[0].base, "alpine:3.19");
	/* Not visible in the stage until re-declared; then it carries the global value. */
	ASSERT_STREQ(step(0, 0)->words[1], "");
	ASSERT_STREQ(step(0, 1)->words[0], "BASE=alpine");
	ASSERT_STREQ(step(0, 2)->words[1], "alpine");
}

TEST(build_args_override_defaults)
{
	const char *ba[] = {"TAG=edge", "V=9"};
	ASSERT_NOT_NULL(
		mk("ARG TAG=3.19\nFROM alpine:$TAG\nARG V=1\nENV VERSION=$V\n", NULL, ba, 2));
	ASSERT_STREQ(plan->stages[0].base, "alpine:edge");
	ASSERT_STREQ(step(0, 1)->words[1], "9");
	ASSERT_EQ(plan->stages[0].nenv, 1);
	ASSERT_STREQ(plan->stages[0].env[0].value, "9");
}

TEST(args_do_not_leak_between_stages)
{
	ASSERT_NOT_NULL(mk("FROM a AS one\nARG X=1\nENV FROM_ONE=$X\n"
			   "FROM a AS two\nENV SEEN=${X:-unset}\n",
			   "two", NULL, 0));
	ASSERT_STREQ(step(1, 0)->words[1], "unset");
}

TEST(env_and_workdir_inherited_from_base_stage)
{
	ASSERT_NOT_NULL(mk("FROM a AS base\nENV P=/opt\nWORKDIR /srv\nUSER app\n"
			   "FROM base AS child\nWORKDIR sub/../app\nRUN echo\nCOPY x $P/y\n",
			   NULL, NULL, 0));
	ASSERT_EQ(plan->stages[1].base_stage, 0);
	ASSERT_STREQ(step(1, 0)->words[0], "/srv/app");
	ASSERT_STREQ(step(1, 1)->workdir, "/srv/app");
	ASSERT_STREQ(step(1, 1)->user, "app");
	ASSERT_STREQ(step(1, 2)->words[1], "/opt/y");
	ASSERT_EQ(step(1, 1)->nrun_env, 1);
	ASSERT_STREQ(step(1, 1)->run_env[0].key, "P");
	ASSERT_STREQ(step(1, 1)->run_env[0].value, "/opt");
}

TEST(env_outranks_arg)
{
	ASSERT_NOT_NULL(mk("FROM a\nARG V=arg\nENV V=env\nLABEL v=$V\n", NULL, NULL, 0));
	ASSERT_STREQ(step(0, 2)->words[1], "env");
}

TEST(platform_args)
{
	ASSERT_NOT_NULL(mk("FROM --platform=$BUILDPLATFORM golang AS b\n"
			   "ARG TARGETARCH TARGETVARIANT\nARG BUILDOS\n"
			   "LABEL t=$TARGETARCH v=$TARGETVARIANT o=$BUILDOS x=${TARGETOS:-none}\n",
			   NULL, NULL, 0));
	ASSERT_STREQ(plan->stages[0].platform, "linux/amd64");
	const struct bld_step *s = step(0, 2);
	ASSERT_STREQ(s->words[1], "arm64");
	ASSERT_STREQ(s->words[3], "v8");
	ASSERT_STREQ(s->words[5], "linux");
	ASSERT_STREQ(s->words[7], "none");
}

TEST(proxy_args_reach_run)
{
	const char *ba[] = {"HTTP_PROXY=http://proxy:3128", "UNDECLARED=x"};
	ASSERT_NOT_NULL(mk("FROM a\nRUN env\n", NULL, ba, 2));
	/* BuildKit's executor sets both spellings, whichever one was given. */
	ASSERT_EQ(step(0, 0)->nrun_env, 2);
	ASSERT_STREQ(step(0, 0)->run_env[0].key, "HTTP_PROXY");
	ASSERT_STREQ(step(0, 0)->run_env[0].value, "http://proxy:3128");
	ASSERT_STREQ(step(0, 0)->run_env[1].key, "http_proxy");
	ASSERT_STREQ(step(0, 0)->run_env[1].value, "http://proxy:3128");
}

/* The value of name in a RUN step's environment, or NULL; a name listed twice fails the test. */
static const char *
env_of(const struct bld_step *s, const char *name)
{
	const char *v = NULL;
	for (size_t i = 0; i < s->nrun_env; i++)
		if (strcmp(s->run_env[i].key, name) == 0) {
			ASSERT_TRUE(v == NULL);
			v = s->run_env[i].value;
		}
	return v;
}

TEST(stage_arg_reaches_run)
{
	ASSERT_NOT_NULL(mk("FROM a\nARG V=1 W=${V}2\nRUN env\n", NULL, NULL, 0));
	ASSERT_EQ(step(0, 1)->nrun_env, 2);
	ASSERT_STREQ(env_of(step(0, 1), "V"), "1");
	ASSERT_STREQ(env_of(step(0, 1), "W"), "12");
	/* An ARG is not part of the image's environment. */
	ASSERT_EQ(plan->stages[0].nenv, 0);
}

TEST(build_arg_overrides_arg_in_run)
{
	const char *ba[] = {"V=9", "U=u"};
	ASSERT_NOT_NULL(mk("FROM a\nARG V=1\nARG U\nARG N\nRUN env\n", NULL, ba, 2));
	ASSERT_STREQ(env_of(step(0, 3), "V"), "9");
	ASSERT_STREQ(env_of(step(0, 3), "U"), "u");
	/* Declared without a value and given none: not set at all, not set empty. */
	ASSERT_TRUE(env_of(step(0, 3), "N") == NULL);
	ASSERT_EQ(step(0, 3)->nrun_env, 2);
}

TEST(global_arg_reaches_run_only_when_redeclared)
{
	ASSERT_NOT_NULL(mk("ARG G=g H=h N\nFROM a\nRUN env\nARG G N\nRUN env\n", NULL, NULL, 0));
	ASSERT_EQ(step(0, 0)->nrun_env, 0);
	ASSERT_STREQ(env_of(step(0, 2), "G"), "g");
	ASSERT_TRUE(env_of(step(0, 2), "H") == NULL);
	ASSERT_TRUE(env_of(step(0, 2), "N") == NULL);
	ASSERT_EQ(step(0, 2)->nrun_env, 1);

	const char *ba[] = {"G=x"};
	ASSERT_NOT_NULL(mk("ARG G=g\nFROM a\nARG G\nRUN env\n", NULL, ba, 1));
	ASSERT_STREQ(env_of(step(0, 1), "G"), "x");
}

TEST(env_beats_earlier_arg_in_run)
{
	ASSERT_NOT_NULL(
		mk("FROM a\nARG V=arg W=w\nENV V=env\nRUN env\nARG V\nRUN env\n", NULL, NULL, 0));
	ASSERT_STREQ(env_of(step(0, 2), "V"), "env");
	ASSERT_STREQ(env_of(step(0, 2), "W"), "w");
	ASSERT_EQ(step(0, 2)->nrun_env, 2);
	/* Re-declared without a value and given none, the ARG changes nothing. */
	ASSERT_STREQ(env_of(step(0, 4), "V"), "env");
}

TEST(arg_with_value_after_env_wins_in_run)
{
	/* BuildKit keeps ENV and ARG values in one list: the later assignment wins. */
	const char *ba[] = {"B=build"};
	ASSERT_NOT_NULL(mk("FROM a\nENV V=env B=env\nARG V=arg\nARG B\nRUN env\nLABEL v=$V\n", NULL,
			   ba, 1));
	ASSERT_STREQ(env_of(step(0, 3), "V"), "arg");
	ASSERT_STREQ(env_of(step(0, 3), "B"), "build");
	ASSERT_EQ(step(0, 3)->nrun_env, 2);
	ASSERT_STREQ(step(0, 4)->words[1], "arg");
	/* The image keeps the ENV values. */
	ASSERT_EQ(plan->stages[0].nenv, 2);
	ASSERT_STREQ(plan->stages[0].env[0].value, "env");
}

TEST(arg_after_run_does_not_reach_it)
{
	ASSERT_NOT_NULL(mk("FROM a\nRUN env\nARG V=1\nRUN env\n", NULL, NULL, 0));
	ASSERT_EQ(step(0, 0)->nrun_env, 0);
	ASSERT_STREQ(env_of(step(0, 2), "V"), "1");
}

TEST(proxy_args_only_when_given)
{
	ASSERT_NOT_NULL(mk("FROM a\nRUN env\n", NULL, NULL, 0));
	ASSERT_EQ(step(0, 0)->nrun_env, 0);

	/* Names match case-insensitively; an empty value sets nothing; the proxy wins over ENV. */
	const char *ba[] = {"https_proxy=http://p:1", "No_Proxy=localhost",
			    "FTP_PROXY=", "OTHER=x"};
	ASSERT_NOT_NULL(mk("FROM a\nENV HTTPS_PROXY=env\nRUN env\n", NULL, ba, 4));
	const struct bld_step *s = step(0, 1);
	ASSERT_STREQ(env_of(s, "HTTPS_PROXY"), "http://p:1");
	ASSERT_STREQ(env_of(s, "https_proxy"), "http://p:1");
	ASSERT_STREQ(env_of(s, "NO_PROXY"), "localhost");
	ASSERT_STREQ(env_of(s, "no_proxy"), "localhost");
	ASSERT_TRUE(env_of(s, "No_Proxy") == NULL);
	ASSERT_TRUE(env_of(s, "FTP_PROXY") == NULL);
	ASSERT_TRUE(env_of(s, "OTHER") == NULL);
	ASSERT_EQ(s->nrun_env, 4);
	ASSERT_STREQ(plan->stages[0].env[0].value, "env");
}

TEST(platform_args_reach_run_only_when_redeclared)
{
	ASSERT_NOT_NULL(
		mk("FROM a\nRUN env\nARG TARGETPLATFORM BUILDARCH\nRUN env\n", NULL, NULL, 0));
	ASSERT_EQ(step(0, 0)->nrun_env, 0);
	const struct bld_step *s = step(0, 2);
	ASSERT_STREQ(env_of(s, "TARGETPLATFORM"), "linux/arm64/v8");
	ASSERT_STREQ(env_of(s, "BUILDARCH"), "amd64");
	ASSERT_TRUE(env_of(s, "TARGETOS") == NULL);
	ASSERT_EQ(s->nrun_env, 2);
}

TEST(args_carry_into_stage_built_on_stage)
{
	ASSERT_NOT_NULL(mk("FROM a AS base\nARG V=1\nENV E=e\n"
			   "FROM base AS child\nRUN env\nLABEL v=$V\n"
			   "FROM a\nRUN env\n",
			   NULL, NULL, 0));
	ASSERT_STREQ(env_of(step(1, 0), "V"), "1");
	ASSERT_STREQ(env_of(step(1, 0), "E"), "e");
	ASSERT_EQ(step(1, 0)->nrun_env, 2);
	ASSERT_STREQ(step(1, 1)->words[1], "1");
	ASSERT_EQ(step(2, 0)->nrun_env, 0);
}

TEST(stage_graph_and_target)
{
	ASSERT_NOT_NULL(mk("FROM golang AS build\nRUN make\n"
			   "FROM alpine AS unused\nRUN true\n"
			   "FROM alpine AS assets\n"
			   "FROM scratch\nCOPY --from=build /app /app\n"
			   "COPY --from=2 /x /x\nCOPY --from=nginx:latest /etc/nginx /n\n"
			   "RUN --mount=from=assets,target=/a true\n",
			   NULL, NULL, 0));
	ASSERT_EQ(plan->nstages, 4);
	ASSERT_EQ(plan->target, 3);
	ASSERT_TRUE(plan->stages[0].reachable);
	ASSERT_FALSE(plan->stages[1].reachable); /* "unused" is never built */
	ASSERT_TRUE(plan->stages[2].reachable);
	ASSERT_TRUE(plan->stages[3].reachable);
	ASSERT_EQ(step(3, 0)->from_stage, 0);
	ASSERT_EQ(step(3, 1)->from_stage, 2);
	ASSERT_EQ(step(3, 2)->from_stage, -1);
	ASSERT_STREQ(step(3, 2)->from, "nginx:latest");
	ASSERT_EQ(step(3, 3)->from_stage, 2);
	ASSERT_EQ(plan->norder, 3);
	ASSERT_EQ(plan->order[plan->norder - 1], 3);

	ASSERT_NOT_NULL(mk("FROM golang AS build\nFROM alpine AS unused\nFROM scratch\n"
			   "COPY --from=build /a /a\n",
			   "Build", NULL, 0));
	ASSERT_EQ(plan->target, 0);
	ASSERT_EQ(plan->norder, 1);
	ASSERT_FALSE(plan->stages[1].reachable);
	ASSERT_FALSE(plan->stages[2].reachable);
}

TEST(from_expanded_stage_ref)
{
	const char *ba[] = {"SRC=build"};
	ASSERT_NOT_NULL(mk("ARG SRC\nFROM a AS build\nFROM b\nARG SRC\nCOPY --from=$SRC / /\n",
			   NULL, ba, 1));
	ASSERT_EQ(step(1, 1)->from_stage, 0);
}

TEST(graph_errors)
{
	ASSERT_TRUE(mk("FROM a AS x\nCOPY --from=y / /\nFROM b AS y\nCOPY --from=x / /\n", "y",
		       NULL, 0) == NULL);
	ASSERT_TRUE(strstr(errbuf, "circular dependency detected") != NULL);
	ASSERT_TRUE(strncmp(errbuf, "Dockerfile:2:", 13) == 0 ||
		    strncmp(errbuf, "Dockerfile:4:", 13) == 0);

	ASSERT_TRUE(mk("FROM a AS x\nCOPY --from=x / /\n", NULL, NULL, 0) == NULL);
	ASSERT_TRUE(strstr(errbuf, "Dockerfile:2: circular dependency") != NULL);

	ASSERT_TRUE(mk("FROM a\nCOPY --from=5 / /\n", NULL, NULL, 0) == NULL);
	ASSERT_STREQ(errbuf, "Dockerfile:2: --from=5: there is no stage 5 (stages are numbered 0 "
			     "to 0)");

	ASSERT_TRUE(mk("FROM a AS build\nFROM b\n", "biuld", NULL, 0) == NULL);
	ASSERT_STREQ(errbuf,
		     "Dockerfile: target stage 'biuld' could not be found (did you mean 'build'?)");

	ASSERT_TRUE(mk("FROM a AS x\nFROM b AS X\n", NULL, NULL, 0) == NULL);
	ASSERT_TRUE(strstr(errbuf, "Dockerfile:2: duplicate stage name 'x'") != NULL);

	ASSERT_TRUE(mk("RUN x\nFROM a\n", NULL, NULL, 0) == NULL);
	ASSERT_STREQ(errbuf,
		     "Dockerfile:1: RUN before the first FROM: only ARG may come before FROM");

	ASSERT_TRUE(mk("ARG X\n", NULL, NULL, 0) == NULL);
	ASSERT_TRUE(strstr(errbuf, "no FROM instruction") != NULL);

	ASSERT_TRUE(mk("FROM a\nWORKDIR ${X:?set X}\n", NULL, NULL, 0) == NULL);
	ASSERT_TRUE(strstr(errbuf, "Dockerfile:2:") == errbuf && strstr(errbuf, "X: set X"));

	ASSERT_TRUE(mk("FROM $NOPE\n", NULL, NULL, 0) == NULL);
	ASSERT_TRUE(strstr(errbuf, "base name ($NOPE) should not be blank") != NULL);
}

TEST(expose_and_stopsignal_checked_after_expansion)
{
	const char *ba[] = {"PORTS=80 443/udp"};
	ASSERT_NOT_NULL(mk("FROM a\nARG PORTS\nEXPOSE $PORTS 8000-8010\nSTOPSIGNAL SIGKILL\n", NULL,
			   ba, 1));
	const struct bld_step *s = step(0, 1);
	ASSERT_EQ(s->nwords, 3);
	ASSERT_STREQ(s->words[0], "80/tcp");
	ASSERT_STREQ(s->words[1], "443/udp");
	ASSERT_STREQ(s->words[2], "8000-8010/tcp");
	ASSERT_TRUE(mk("FROM a\nEXPOSE 80/icmp\n", NULL, NULL, 0) == NULL);
	ASSERT_TRUE(strstr(errbuf, "invalid port '80/icmp'") != NULL);
	ASSERT_TRUE(mk("FROM a\nEXPOSE 90-80\n", NULL, NULL, 0) == NULL);
	ASSERT_TRUE(mk("FROM a\nSTOPSIGNAL SIGNOPE\n", NULL, NULL, 0) == NULL);
	ASSERT_TRUE(strstr(errbuf, "invalid STOPSIGNAL 'SIGNOPE'") != NULL);
}

TEST(mount_values_expanded)
{
	ASSERT_NOT_NULL(mk("FROM a\nARG C=/cache\nRUN --mount=type=cache,target=$C,id=x-$C "
			   "--mount=type=ssh --mount=type=ssh true\n",
			   NULL, NULL, 0));
	const struct bld_step *s = step(0, 1);
	ASSERT_EQ(s->nmounts, 3);
	ASSERT_STREQ(s->mounts[0].target, "/cache");
	ASSERT_STREQ(s->mounts[0].id, "x-/cache");
	ASSERT_STREQ(s->mounts[1].target, "/run/buildkit/ssh_agent.0");
	ASSERT_STREQ(s->mounts[2].target, "/run/buildkit/ssh_agent.1");
}

int
main(int argc, char **argv)
{
	int r = tap_main(argc, argv);
	reset();
	return r;
}
