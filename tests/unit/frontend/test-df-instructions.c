/* Typed instructions: each instruction's flags, defaults and argument checks. */
#include <stdlib.h>
#include <string.h>

#include "instructions.h"
#include "tap.h"

static struct bld_dockerfile *df;

/* Builds the instruction on the last line of "FROM scratch\n" + line. */
static const struct bld_instr *
one(const char *line)
{
	static char err_msg[SC_ERR_MSG_MAX];
	df = bld_dockerfile_free(df);
	char buf[4096];
	snprintf(buf, sizeof(buf), "FROM scratch\n%s\n", line);
	struct sc_err err = SC_ERR_INIT;
	if (bld_dockerfile_parse(buf, strlen(buf), "Dockerfile", &df, &err) < 0)
		tap_fail(__FILE__, __LINE__, "parse: %s", sc_err_msg(&err));
	const struct bld_instr *ins;
	size_t n;
	if (bld_dockerfile_instructions(df, &ins, &n, &err) < 0) {
		snprintf(err_msg, sizeof(err_msg), "%s", sc_err_msg(&err));
		return NULL;
	}
	return &ins[n - 1];
}

/* The error building line, or "" when it builds. */
static const char *
err_of(const char *line)
{
	static char msg[SC_ERR_MSG_MAX];
	df = bld_dockerfile_free(df);
	char buf[4096];
	snprintf(buf, sizeof(buf), "FROM scratch\n%s\n", line);
	struct sc_err err = SC_ERR_INIT;
	const struct bld_instr *ins;
	size_t n;
	if (bld_dockerfile_parse(buf, strlen(buf), "Dockerfile", &df, &err) < 0 ||
	    bld_dockerfile_instructions(df, &ins, &n, &err) < 0) {
		snprintf(msg, sizeof(msg), "%s", sc_err_msg(&err));
		return msg;
	}
	return "";
}

#define ASSERT_ERR_HAS(line, needle)                                                               \
	do {                                                                                       \
		const char *_e = err_of(line);                                                     \
		if (!strstr(_e, needle))                                                           \
			tap_fail(__FILE__, __LINE__, "'%s': error '%s' lacks '%s'", line, _e,      \
				 needle);                                                          \
	} while (0)

TEST(from_flags_and_name)
{
	const struct bld_instr *in = one("FROM --platform=linux/arm64 golang:1.22 AS Build");
	ASSERT_NOT_NULL(in);
	ASSERT_EQ(in->kind, BLD_INSTR_FROM);
	ASSERT_STREQ(in->u.from.image, "golang:1.22");
	ASSERT_STREQ(in->u.from.name, "build");
	ASSERT_STREQ(in->u.from.platform, "linux/arm64");
	in = one("FROM alpine");
	ASSERT_TRUE(in->u.from.name == NULL && in->u.from.platform == NULL);
	ASSERT_ERR_HAS("FROM a AS 1bad", "invalid name for build stage: '1bad'");
	ASSERT_ERR_HAS("FROM a b", "FROM requires either one or three arguments");
	ASSERT_ERR_HAS("FROM --platfrom=x a", "unknown flag --platfrom for FROM (did you mean "
					      "--platform?)");
	ASSERT_ERR_HAS("FROM --platform a", "missing a value on flag --platform");
}

TEST(run_mounts)
{
	const struct bld_instr *in =
		one("RUN --mount=type=cache,target=/root/.cache,sharing=locked "
		    "--mount=type=secret,id=tok --mount=target=/src,rw "
		    "--mount=type=ssh --mount=type=tmpfs,target=/t,size=64m go build");
	ASSERT_NOT_NULL(in);
	ASSERT_EQ(in->u.run.nmounts, 5);
	const struct bld_mount *m = in->u.run.mounts;
	ASSERT_EQ(m[0].type, BLD_MOUNT_CACHE);
	ASSERT_STREQ(m[0].id, "/root/.cache");
	ASSERT_EQ(m[0].sharing, BLD_SHARING_LOCKED);
	ASSERT_EQ(m[0].mode, 0755);
	ASSERT_FALSE(m[0].readonly);
	ASSERT_EQ(m[1].type, BLD_MOUNT_SECRET);
	ASSERT_STREQ(m[1].target, "/run/secrets/tok");
	ASSERT_EQ(m[1].mode, 0400);
	ASSERT_EQ(m[2].type, BLD_MOUNT_BIND);
	ASSERT_FALSE(m[2].readonly);
	ASSERT_EQ(m[3].type, BLD_MOUNT_SSH);
	ASSERT_STREQ(m[3].id, "default");
	ASSERT_EQ(m[3].mode, 0600);
	ASSERT_EQ(m[4].type, BLD_MOUNT_TMPFS);
	ASSERT_EQ(m[4].size, 64ull << 20);
	in = one("RUN --mount=type=bind,source=/a,target=/b,from=builder true");
	ASSERT_TRUE(in->u.run.mounts[0].readonly);
	ASSERT_STREQ(in->u.run.mounts[0].from, "builder");
	ASSERT_ERR_HAS("RUN --mount=type=bind,target=/a,\\\"src=x true", "unbalanced quotes");
	ASSERT_ERR_HAS("RUN --mount=type=nfs,target=/x true", "unsupported mount type 'nfs'");
	ASSERT_ERR_HAS("RUN --mount=type=cache true", "needs a target");
	ASSERT_ERR_HAS("RUN --mount=type=cache,target=/x,colour=red true",
		       "unexpected key 'colour'");
	ASSERT_ERR_HAS("RUN --mount=type=tmpfs,target=/x,from=a true", "'from' is not supported");
	ASSERT_ERR_HAS("RUN --mount=type=bind,target=/x,sharing=private true", "'sharing' only");
	ASSERT_ERR_HAS("RUN --mount=type=cache,target=/x,mode=999 true", "invalid mode '999'");
	ASSERT_ERR_HAS("RUN --mount=type=secret true", "needs an id or a target");
	ASSERT_ERR_HAS("RUN --mount=type=cache,target=/x,uid=-1 true", "invalid uid");
}

TEST(run_network_security_and_form)
{
	const struct bld_instr *in = one("RUN --network=none --security=insecure make");
	ASSERT_EQ(in->u.run.network, BLD_NETWORK_NONE);
	ASSERT_EQ(in->u.run.security, BLD_SECURITY_INSECURE);
	ASSERT_TRUE(in->u.run.cmd.shell_form);
	ASSERT_EQ(in->u.run.cmd.argc, 1);
	ASSERT_STREQ(in->u.run.cmd.argv[0], "make");
	in = one("RUN [\"make\", \"all\"]");
	ASSERT_EQ(in->u.run.network, BLD_NETWORK_DEFAULT);
	ASSERT_FALSE(in->u.run.cmd.shell_form);
	ASSERT_EQ(in->u.run.cmd.argc, 2);
	ASSERT_ERR_HAS("RUN --network=bridge x", "network mode 'bridge' not supported");
	ASSERT_ERR_HAS("RUN --security=root x", "security mode 'root' not supported");
	ASSERT_ERR_HAS("RUN --netwrk=none x", "did you mean --network?");
	ASSERT_ERR_HAS("RUN --network=none --network=host x",
		       "duplicate flag specified: --network");
	ASSERT_ERR_HAS("RUN", "RUN requires a command");
}

TEST(cmd_entrypoint_shell)
{
	const struct bld_instr *in = one("CMD [\"nginx\", \"-g\", \"daemon off;\"]");
	ASSERT_EQ(in->kind, BLD_INSTR_CMD);
	ASSERT_FALSE(in->u.cmd.shell_form);
	ASSERT_EQ(in->u.cmd.argc, 3);
	in = one("ENTRYPOINT exec app");
	ASSERT_TRUE(in->u.cmd.shell_form);
	in = one("SHELL [\"/bin/bash\", \"-eo\", \"pipefail\", \"-c\"]");
	ASSERT_EQ(in->u.shell.argc, 4);
	ASSERT_ERR_HAS("SHELL /bin/bash -c", "SHELL requires the arguments to be in JSON form");
	ASSERT_ERR_HAS("SHELL []", "SHELL requires at least one argument");
	ASSERT_ERR_HAS("CMD --x=1 a", "unknown flag --x: CMD takes no flags");
}

TEST(env_label_maintainer)
{
	const struct bld_instr *in = one("ENV A=1 B=\"two words\"");
	ASSERT_EQ(in->u.kv.n, 2);
	ASSERT_STREQ(in->u.kv.kvs[1].key, "B");
	ASSERT_STREQ(in->u.kv.kvs[1].value, "\"two words\"");
	in = one("ENV PATH /usr/bin:/bin");
	ASSERT_EQ(in->u.kv.n, 1);
	ASSERT_STREQ(in->u.kv.kvs[0].value, "/usr/bin:/bin");
	in = one("LABEL org.example.a=1");
	ASSERT_EQ(in->kind, BLD_INSTR_LABEL);
	in = one("MAINTAINER Jane <j@example.com>");
	ASSERT_STREQ(in->u.kv.kvs[0].key, "maintainer");
	ASSERT_STREQ(in->u.kv.kvs[0].value, "Jane <j@example.com>");
	ASSERT_ERR_HAS("ENV =x", "ENV names can not be blank");
	ASSERT_ERR_HAS("ENV A=1 B", "can't find = in \"B\"");
	ASSERT_ERR_HAS("LABEL", "LABEL requires at least one argument");
}

TEST(arg_forms)
{
	const struct bld_instr *in = one("ARG A B=2 C=");
	ASSERT_EQ(in->u.kv.n, 3);
	ASSERT_TRUE(in->u.kv.kvs[0].value == NULL);
	ASSERT_STREQ(in->u.kv.kvs[1].value, "2");
	ASSERT_STREQ(in->u.kv.kvs[2].value, "");
	ASSERT_ERR_HAS("ARG", "ARG requires at least one argument");
	ASSERT_ERR_HAS("ARG =x", "ARG names can not be blank");
}

TEST(expose_user_workdir_volume_stopsignal)
{
	const struct bld_instr *in = one("EXPOSE 80 443/tcp 5000-5010/udp");
	ASSERT_EQ(in->u.words.n, 3);
	in = one("VOLUME [\"/data\", \"/logs\"]");
	ASSERT_EQ(in->u.words.n, 2);
	in = one("VOLUME /a /b");
	ASSERT_EQ(in->u.words.n, 2);
	in = one("USER app:app");
	ASSERT_STREQ(in->u.str, "app:app");
	in = one("WORKDIR /srv");
	ASSERT_STREQ(in->u.str, "/srv");
	in = one("STOPSIGNAL SIGQUIT");
	ASSERT_STREQ(in->u.str, "SIGQUIT");
	ASSERT_ERR_HAS("EXPOSE", "EXPOSE requires at least 1 argument");
	ASSERT_ERR_HAS("VOLUME [\"\"]", "VOLUME specified can not be an empty string");
	ASSERT_ERR_HAS("WORKDIR", "WORKDIR requires exactly one argument");
	ASSERT_ERR_HAS("USER --x a", "unknown flag --x: USER takes no flags");
}

TEST(copy_flags)
{
	const struct bld_instr *in = one("COPY --from=build --chown=1000:1000 --chmod=0644 --link "
					 "--parents --exclude=*.md --exclude=tmp a b /dst/");
	ASSERT_NOT_NULL(in);
	const struct bld_copy *c = &in->u.copy;
	ASSERT_STREQ(c->from, "build");
	ASSERT_STREQ(c->chown, "1000:1000");
	ASSERT_TRUE(c->chmod_octal);
	ASSERT_EQ(c->chmod_mode, 0644);
	ASSERT_TRUE(c->link);
	ASSERT_TRUE(c->parents);
	ASSERT_EQ(c->nexcludes, 2);
	ASSERT_STREQ(c->excludes[1], "tmp");
	ASSERT_EQ(c->nsrcs, 2);
	ASSERT_STREQ(c->dest, "/dst/");
	in = one("COPY --chmod=u+x,g-w,o=r a /b");
	ASSERT_FALSE(in->u.copy.chmod_octal);
	in = one("COPY --link=false a /b");
	ASSERT_FALSE(in->u.copy.link);
	ASSERT_ERR_HAS("COPY a", "COPY requires at least two arguments");
	ASSERT_ERR_HAS("COPY --chmod=8888 a b", "invalid --chmod value '8888'");
	ASSERT_ERR_HAS("COPY --chmod=rwx a b", "invalid --chmod value 'rwx'");
	/* Values with variables are checked once expanded (bld_copy_flags_validate). */
	in = one("COPY --chmod=${mode} --chown=$U:$G a /b");
	ASSERT_NOT_NULL(in);
	ASSERT_STREQ(in->u.copy.chmod, "${mode}");
	ASSERT_FALSE(in->u.copy.chmod_octal);
	ASSERT_STREQ(in->u.copy.chown, "$U:$G");
	in = one("ADD --chmod=0${PERM} --chown=${USER:-app} a /b");
	ASSERT_NOT_NULL(in);
	ASSERT_STREQ(in->u.copy.chmod, "0${PERM}");
	ASSERT_STREQ(in->u.copy.chown, "${USER:-app}");
	ASSERT_ERR_HAS("COPY --link=maybe a b", "expecting boolean value for flag --link");
	ASSERT_ERR_HAS("COPY --checksum=sha256:00 a b", "unknown flag --checksum for COPY");
	ASSERT_ERR_HAS("COPY https://example.com/x /b", "COPY cannot fetch URLs");
	ASSERT_ERR_HAS("COPY a <<EOF\nEOF", "cannot use a heredoc as the destination");
}

TEST(add_flags)
{
	const struct bld_instr *in =
		one("ADD --checksum=sha256:"
		    "24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d "
		    "https://example.com/a.tar.gz /a");
	ASSERT_NOT_NULL(in);
	ASSERT_STREQ(in->u.copy.srcs[0], "https://example.com/a.tar.gz");
	ASSERT_TRUE(bld_source_is_url(in->u.copy.srcs[0]));
	in = one("ADD --keep-git-dir=true https://github.com/moby/buildkit.git#v0.10.1 /bk");
	ASSERT_TRUE(in->u.copy.keep_git_dir);
	ASSERT_TRUE(bld_source_is_git(in->u.copy.srcs[0]));
	ASSERT_ERR_HAS("ADD --checksum=md5:x https://a/b /c", "invalid --checksum");
	ASSERT_ERR_HAS("ADD --checksum=sha256:"
		       "24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d "
		       "local.tar /c",
		       "--checksum needs an HTTP(S) or git source");
	ASSERT_ERR_HAS("ADD --keep-git-dir a /b", "--keep-git-dir only applies to git sources");
	ASSERT_ERR_HAS("ADD --from=x a /b", "unknown flag --from for ADD");
}

TEST(healthcheck)
{
	const struct bld_instr *in = one("HEALTHCHECK --interval=30s --timeout=1m30s "
					 "--start-period=5s --start-interval=500ms --retries=3 "
					 "CMD curl -f http://localhost/");
	const struct bld_healthcheck *h = &in->u.health;
	ASSERT_FALSE(h->none);
	ASSERT_EQ(h->interval_ns, 30000000000ull);
	ASSERT_EQ(h->timeout_ns, 90000000000ull);
	ASSERT_EQ(h->start_period_ns, 5000000000ull);
	ASSERT_EQ(h->start_interval_ns, 500000000ull);
	ASSERT_EQ(h->retries, 3);
	ASSERT_STREQ(h->test[0], "CMD-SHELL");
	ASSERT_STREQ(h->test[1], "curl -f http://localhost/");
	in = one("HEALTHCHECK CMD [\"/bin/check\", \"-q\"]");
	ASSERT_STREQ(in->u.health.test[0], "CMD");
	ASSERT_EQ(in->u.health.ntest, 3);
	in = one("HEALTHCHECK NONE");
	ASSERT_TRUE(in->u.health.none);
	in = one("HEALTHCHECK --timeout=0s CMD x");
	ASSERT_EQ(in->u.health.timeout_ns, 0);
	ASSERT_ERR_HAS("HEALTHCHECK NONE x", "HEALTHCHECK NONE takes no arguments");
	ASSERT_ERR_HAS("HEALTHCHECK CONNECT x", "unknown type 'CONNECT' in HEALTHCHECK");
	ASSERT_ERR_HAS("HEALTHCHECK CMD", "missing command after HEALTHCHECK CMD");
	ASSERT_ERR_HAS("HEALTHCHECK --interval=10 CMD x", "invalid duration '10'");
	ASSERT_ERR_HAS("HEALTHCHECK --interval=1us CMD x", "cannot be less than 1ms");
	ASSERT_ERR_HAS("HEALTHCHECK --retries=-1 CMD x", "--retries cannot be negative");
	ASSERT_ERR_HAS("HEALTHCHECK --intervall=1s CMD x", "did you mean --interval?");
}

TEST(onbuild)
{
	const struct bld_instr *in = one("ONBUILD COPY --chown=1 . /app");
	ASSERT_EQ(in->kind, BLD_INSTR_ONBUILD);
	ASSERT_EQ(in->u.onbuild.trigger->kind, BLD_INSTR_COPY);
	ASSERT_STREQ(in->u.onbuild.trigger->u.copy.chown, "1");
	ASSERT_STREQ(in->u.onbuild.expression, "COPY --chown=1 . /app");
	ASSERT_ERR_HAS("ONBUILD ONBUILD RUN x", "chaining ONBUILD via 'ONBUILD ONBUILD'");
	ASSERT_ERR_HAS("ONBUILD FROM x", "FROM isn't allowed as an ONBUILD trigger");
	ASSERT_ERR_HAS("ONBUILD MAINTAINER x", "MAINTAINER isn't allowed");
	ASSERT_ERR_HAS("ONBUILD", "ONBUILD requires at least one argument");
	ASSERT_ERR_HAS("ONBUILD COPY --chwon=1 a b", "Dockerfile:2: unknown flag --chwon for COPY");
}

TEST(kind_strings)
{
	enum bld_instr_kind k;
	ASSERT_OK(bld_instr_kind_from_string("healthcheck", &k));
	ASSERT_EQ(k, BLD_INSTR_HEALTHCHECK);
	ASSERT_STREQ(bld_instr_kind_to_string(BLD_INSTR_STOPSIGNAL), "STOPSIGNAL");
	ASSERT_ERRNO(bld_instr_kind_from_string("nope", &k), -EINVAL);
	enum bld_mount_type t;
	ASSERT_OK(bld_mount_type_from_string("tmpfs", &t));
	ASSERT_EQ(t, BLD_MOUNT_TMPFS);
	int64_t ns;
	ASSERT_OK(bld_duration_parse("1h2m3.5s", &ns));
	ASSERT_EQ(ns, 3723500000000ll);
	ASSERT_ERRNO(bld_duration_parse("5", &ns), -EINVAL);
	ASSERT_ERRNO(bld_duration_parse("", &ns), -EINVAL);
}

int
main(int argc, char **argv)
{
	int r = tap_main(argc, argv);
	bld_dockerfile_free(df);
	return r;
}
