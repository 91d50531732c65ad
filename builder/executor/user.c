/*
 * USER for a RUN step: "user[:group]" or "uid[:gid]" resolved against the
 * step's own /etc/passwd and /etc/group, the way BuildKit does it (runc's
 * GetExecUser behind a numeric fast path):
 *
 *  - NULL, "" : root, 0:0, no supplementary groups.
 *  - "uid:gid" both numeric (or "root"): taken as given, files not read,
 *    no supplementary groups.
 *  - otherwise the user part is looked up by name, or a number by uid. A
 *    name that is not found is an error (-EINVAL), except "root", which
 *    is 0:0 in an image without /etc/passwd; a number that is not found is
 *    used as given with gid 0.
 *  - an explicit group is looked up by name or gid in the same way (an
 *    unknown name is an error, an unknown number is used as given) and
 *    replaces the primary gid; supplementary groups are then not added.
 *  - without an explicit group, a user found in /etc/passwd gets as
 *    supplementary groups every group of /etc/group listing its name.
 *
 * The files belong to the image being built, so they are untrusted: they
 * are opened with RESOLVE_IN_ROOT (symlinks resolve as in the container and
 * never leave it), must be regular files, and are read up to USER_FILE_MAX.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cleanup.h"
#include "executor.h"

#define USER_FILE_MAX	(4u << 20)  /* /etc/passwd or /etc/group */
#define USER_ID_MAX	2147483647u /* as runc: ids above 2^31-1 are refused */
#define USER_GROUPS_MAX 65536u	    /* NGROUPS_MAX of Linux */

static int
open_in_root(int dirfd, const char *path, int flags)
{
	struct open_how how = {
		.flags = (uint64_t)flags | O_CLOEXEC,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	long fd;
	do
		fd = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
	while (fd < 0 && (errno == EINTR || errno == EAGAIN));
	return fd < 0 ? -errno : (int)fd;
}

/*
 * Reads etc/passwd or etc/group of the rootfs into a NUL-terminated buffer.
 * A missing file reads as empty (*ret = NULL).
 */
static int
read_user_file(int rootfs_dirfd, const char *path, char **ret, struct sc_err *err)
{
	*ret = NULL;
	/* O_NONBLOCK: a FIFO planted at /etc/passwd must not hang the build. */
	_cleanup_close_ int fd = open_in_root(rootfs_dirfd, path, O_RDONLY | O_NOCTTY | O_NONBLOCK);
	if (fd == -ENOENT)
		return 0;
	if (fd < 0)
		return sc_err_setsys(err, fd, "cannot open '/%s' in the root file system", path);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return sc_err_setsys(err, -errno, "cannot stat '/%s' in the root file system",
				     path);
	if (!S_ISREG(st.st_mode))
		return sc_err_set(err, -EINVAL,
				  "'/%s' in the root file system is not a regular file", path);
	if (st.st_size > (off_t)USER_FILE_MAX)
		return sc_err_set(err, -EFBIG,
				  "'/%s' in the root file system is larger than %u MiB", path,
				  USER_FILE_MAX >> 20);

	/* One byte over the size, to see the end of file or a file that grew. */
	size_t cap = (size_t)st.st_size + 2, len = 0;
	_cleanup_free_ char *buf = malloc(cap);
	if (!buf)
		return sc_err_set(err, -ENOMEM, "out of memory");
	for (;;) {
		if (len > USER_FILE_MAX)
			return sc_err_set(err, -EFBIG,
					  "'/%s' in the root file system is larger than %u MiB",
					  path, USER_FILE_MAX >> 20);
		if (len + 1 == cap) {
			size_t ncap = cap < 2048 ? 4096 : cap * 2;
			if (ncap > USER_FILE_MAX + 2)
				ncap = USER_FILE_MAX + 2;
			char *n = realloc(buf, ncap);
			if (!n)
				return sc_err_set(err, -ENOMEM, "out of memory");
			buf = n;
			cap = ncap;
		}
		ssize_t n = read(fd, buf + len, cap - 1 - len);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return sc_err_setsys(err, -errno,
					     "cannot read '/%s' in the root file system", path);
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	*ret = TAKE_PTR(buf);
	return 0;
}

/* Strict decimal id in [0, USER_ID_MAX]. */
static bool
parse_id(const char *s, uint32_t *ret)
{
	if (!*s)
		return false;
	uint64_t v = 0;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return false;
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > USER_ID_MAX)
			return false;
	}
	*ret = (uint32_t)v;
	return true;
}

/* As BuildKit's fast path: a number, or "root" for 0. */
static bool
parse_fast_id(const char *s, uint32_t *ret)
{
	if (strcmp(s, "root") == 0) {
		*ret = 0;
		return true;
	}
	return parse_id(s, ret);
}

/*
 * Splits the next line of a colon-separated file in place into at most
 * nfields fields (the last one keeps the rest of the line). Returns the
 * number of fields, 0 for a line to skip, -1 at the end.
 */
static int
next_record(char **cursor, char **fields, int nfields)
{
	char *line = *cursor;
	if (!line || !*line)
		return -1;
	char *nl = strchr(line, '\n');
	if (nl) {
		*nl = '\0';
		*cursor = nl + 1;
	} else {
		*cursor = line + strlen(line);
	}
	size_t l = strlen(line);
	while (l > 0 && (line[l - 1] == '\r' || line[l - 1] == ' ' || line[l - 1] == '\t'))
		line[--l] = '\0';
	while (*line == ' ' || *line == '\t')
		line++;
	if (!*line || *line == '#')
		return 0;
	int n = 0;
	fields[n++] = line;
	for (char *p = line; *p && n < nfields; p++) {
		if (*p == ':') {
			*p = '\0';
			fields[n++] = p + 1;
		}
	}
	return n;
}

struct pw_match {
	bool found;
	uint32_t uid, gid;
	char *name; /* points into the passwd buffer */
};

/* First passwd entry whose name is user, or, when user is numeric, whose uid is. */
static void
find_passwd(char *buf, const char *user, struct pw_match *m)
{
	uint32_t want = 0;
	bool numeric = parse_id(user, &want);
	char *cur = buf, *f[7];
	int n;
	while ((n = next_record(&cur, f, 7)) >= 0) {
		uint32_t uid, gid;
		if (n < 4 || !parse_id(f[2], &uid) || !parse_id(f[3], &gid))
			continue;
		if (strcmp(f[0], user) == 0 || (numeric && uid == want)) {
			m->found = true;
			m->uid = uid;
			m->gid = gid;
			m->name = f[0];
			return;
		}
	}
}

/* First group entry whose name is group, or, when group is numeric, whose gid is. */
static bool
find_group(char *buf, const char *group, uint32_t *ret_gid)
{
	uint32_t want = 0;
	bool numeric = parse_id(group, &want);
	char *cur = buf, *f[4];
	int n;
	while ((n = next_record(&cur, f, 4)) >= 0) {
		uint32_t gid;
		if (n < 3 || !parse_id(f[2], &gid))
			continue;
		if (strcmp(f[0], group) == 0 || (numeric && gid == want)) {
			*ret_gid = gid;
			return true;
		}
	}
	return false;
}

/* The gids of every group whose member list names user. */
static int
member_groups(char *buf, const char *user, gid_t **ret, size_t *ret_n, struct sc_err *err)
{
	_cleanup_free_ gid_t *gids = NULL;
	size_t n = 0, cap = 0;
	char *cur = buf, *f[4];
	int nf;
	while ((nf = next_record(&cur, f, 4)) >= 0) {
		uint32_t gid;
		if (nf < 4 || !parse_id(f[2], &gid))
			continue;
		bool member = false;
		for (char *save = NULL, *m = strtok_r(f[3], ",", &save); m && !member;
		     m = strtok_r(NULL, ",", &save)) {
			while (*m == ' ')
				m++;
			size_t ml = strlen(m);
			while (ml > 0 && m[ml - 1] == ' ')
				m[--ml] = '\0';
			member = strcmp(m, user) == 0;
		}
		if (!member)
			continue;
		if (n == USER_GROUPS_MAX)
			return sc_err_set(err, -EINVAL,
					  "user '%s' is in more than %u groups in /etc/group", user,
					  USER_GROUPS_MAX);
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 8;
			gid_t *g = reallocarray(gids, ncap, sizeof(*g));
			if (!g)
				return sc_err_set(err, -ENOMEM, "out of memory");
			gids = g;
			cap = ncap;
		}
		gids[n++] = (gid_t)gid;
	}
	*ret = TAKE_PTR(gids);
	*ret_n = n;
	return 0;
}

/* The resolution itself; outputs are written only on success. */
static int
resolve(int rootfs_dirfd, const char *spec, uint32_t *uid, uint32_t *gid, gid_t **groups,
	size_t *ngroups, struct sc_err *err)
{
	*uid = *gid = 0;
	*groups = NULL;
	*ngroups = 0;
	if (!spec || !*spec)
		return 0;

	_cleanup_free_ char *copy = strdup(spec);
	if (!copy)
		return sc_err_set(err, -ENOMEM, "out of memory");
	char *user = copy, *group = strchr(copy, ':');
	if (group)
		*group++ = '\0';
	if (group && !*group)
		group = NULL;
	if (!*user)
		return sc_err_set(err, -EINVAL, "invalid user '%s': the user part is empty", spec);

	if (group && parse_fast_id(user, uid) && parse_fast_id(group, gid))
		return 0;

	_cleanup_free_ char *passwd = NULL, *grp = NULL;
	int r = read_user_file(rootfs_dirfd, "etc/passwd", &passwd, err);
	if (r < 0)
		return r;

	struct pw_match pw = {0};
	if (passwd)
		find_passwd(passwd, user, &pw);
	if (pw.found) {
		*uid = pw.uid;
		*gid = pw.gid;
	} else if (parse_id(user, uid)) {
		*gid = 0;
	} else if (strcmp(user, "root") == 0) {
		*uid = *gid = 0;
	} else {
		return sc_err_set(
			err, -EINVAL,
			"unable to find user '%s' in the image's /etc/passwd; add it (e.g. "
			"RUN useradd %s) or give a numeric uid",
			user, user);
	}

	if (!group && !pw.found)
		return 0;

	r = read_user_file(rootfs_dirfd, "etc/group", &grp, err);
	if (r < 0)
		return r;

	if (group) {
		uint32_t g;
		if (grp && find_group(grp, group, &g))
			*gid = g;
		else if (parse_id(group, &g))
			*gid = g;
		else
			return sc_err_set(err, -EINVAL,
					  "unable to find group '%s' in the image's /etc/group",
					  group);
		return 0;
	}
	if (grp)
		return member_groups(grp, pw.name, groups, ngroups, err);
	return 0;
}

int
bld_user_resolve(int rootfs_dirfd, const char *spec, uid_t *ret_uid, gid_t *ret_gid,
		 gid_t **ret_groups, size_t *ret_ngroups, struct sc_err *err)
{
	uint32_t uid, gid;
	_cleanup_free_ gid_t *groups = NULL;
	size_t ngroups;
	int r = resolve(rootfs_dirfd, spec, &uid, &gid, &groups, &ngroups, err);
	if (r < 0)
		return r;
	*ret_uid = (uid_t)uid;
	*ret_gid = (gid_t)gid;
	if (ret_groups)
		*ret_groups = TAKE_PTR(groups);
	if (ret_ngroups)
		*ret_ngroups = ngroups;
	return 0;
}
