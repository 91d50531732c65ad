/*
 * The copy engine's batched writer (snap_copy_writer), as any user: data
 * handed over in odd pieces comes out whole, with holes where the offsets
 * skip ahead; each file's finish runs once, after all of its data is
 * written; failures name the file, stick, and abandon what is left, and
 * nothing leaks. Points run with io_uring (where the system allows it) and
 * with SNAP_COPY_NO_URING, and with a queue of 2 so that every wait for a
 * free buffer and every bound on files in flight is taken.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "copy-fixture.h"
#include "copy.h"
#include "tap.h"

#define NFILES 300

struct rec {
	unsigned calls;
	int status;
	int64_t size_at_finish; /* what fstat saw in finish */
	int64_t want_size;
	int fail_with; /* finish returns this (0: succeeds) */
};

static uint8_t
byte_at(unsigned file, uint64_t off)
{
	return (uint8_t)(((off * 2654435761u) ^ (file * 40503u)) >> 11);
}

static int
finish(void *arg, int fd, int status, struct sc_err *err)
{
	struct rec *r = arg;
	r->calls++;
	r->status = status;
	if (status < 0)
		return 0;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return sc_err_setsys(err, -errno, "fstat");
	/* A trailing hole is only a size: the caller sets it, as layer apply does. */
	if (st.st_size < r->want_size && ftruncate(fd, r->want_size) < 0)
		return sc_err_setsys(err, -errno, "ftruncate");
	r->size_at_finish = st.st_size;
	if (fchmod(fd, 0640) < 0)
		return sc_err_setsys(err, -errno, "fchmod");
	struct timespec ts[2] = {{1500000000, 1}, {1500000000, 123456789}};
	if (futimens(fd, ts) < 0)
		return sc_err_setsys(err, -errno, "futimens");
	if (r->fail_with)
		return sc_err_set(err, r->fail_with, "finish of the test file failed");
	return 0;
}

/* File i: its size and whether its data has a gap [size/3, 2*size/3) and a trailing hole. */
static uint64_t
file_size(unsigned i)
{
	static const uint64_t sizes[] = {0, 1, 131071, 131072, 131073, 3u << 20, (9u << 20) + 5};
	if (i < sizeof(sizes) / sizeof(sizes[0]))
		return sizes[i];
	return ((uint64_t)i * 2654435761u) % 40000;
}

static bool
file_gappy(unsigned i)
{
	return i % 5 == 4 && file_size(i) > 30;
}

static int
open_file(unsigned i, const char *tag)
{
	return open(fx_path("%s-f%03u", tag, i), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
}

/* Hands file i's data to w in pieces of irregular sizes (skipping its gap). */
static int
feed(struct snap_copy_writer *w, unsigned i, struct sc_err *err)
{
	uint64_t size = file_size(i), gap_from = size, gap_to = size, end = size;
	if (file_gappy(i)) {
		gap_from = size / 3;
		gap_to = 2 * size / 3;
		end = size - size / 10; /* the rest is a trailing hole */
	}
	static uint8_t buf[70001];
	uint64_t off = 0;
	unsigned k = 0;
	while (off < end) {
		if (off == gap_from)
			off = gap_to;
		uint64_t n = 1 + (k++ * 7919u) % sizeof(buf);
		if (off < gap_from && off + n > gap_from)
			n = gap_from - off;
		if (off + n > end)
			n = end - off;
		for (uint64_t j = 0; j < n; j++)
			buf[j] = byte_at(i, off + j);
		int r = snap_copy_writer_write(w, buf, n, off, err);
		if (r < 0)
			return r;
		off += n;
	}
	return 0;
}

static void
check_file(unsigned i, const char *tag)
{
	int fd = open(fx_path("%s-f%03u", tag, i), O_RDONLY | O_CLOEXEC);
	ASSERT_TRUE(fd >= 0);
	struct stat st;
	ASSERT_OK(fstat(fd, &st));
	uint64_t size = file_size(i);
	ASSERT_EQ((uint64_t)st.st_size, size);
	ASSERT_EQ(st.st_mode & 07777, 0640);
	ASSERT_EQ(st.st_mtim.tv_sec, 1500000000);
	ASSERT_EQ(st.st_mtim.tv_nsec, 123456789);
	bool gappy = file_gappy(i);
	uint8_t *data = malloc(size + 1);
	ASSERT_NOT_NULL(data);
	ASSERT_EQ(pread(fd, data, size + 1, 0), (ssize_t)size);
	for (uint64_t off = 0; off < size; off++) {
		bool hole = gappy &&
			    ((off >= size / 3 && off < 2 * size / 3) || off >= size - size / 10);
		uint8_t want = hole ? 0 : byte_at(i, off);
		if (data[off] != want)
			tap_fail(__FILE__, __LINE__, "file %u byte %llu: %u, want %u", i,
				 (unsigned long long)off, data[off], want);
	}
	free(data);
	/*
	 * The gaps are holes, not written zeros: where a gap spans whole blocks
	 * SEEK_HOLE finds the first hole no later than the gap's start (a file
	 * system may round it to a block), and about a third of the file (the
	 * gap and the trailing hole) takes no blocks.
	 */
	if (gappy && size >= (64u << 10)) {
		off_t h = lseek(fd, 0, SEEK_HOLE);
		ASSERT_TRUE(h >= 0 && (uint64_t)h <= size / 3 + 4096);
		ASSERT_TRUE((uint64_t)st.st_blocks * 512 < size * 4 / 5);
	}
	close(fd);
}

static void
write_all(const char *tag, unsigned flags, unsigned qd)
{
	struct snap_copy_opts o = {.flags = flags, .queue_depth = qd};
	struct sc_err err = SC_ERR_INIT;
	struct snap_copy_writer *w = NULL;
	ASSERT_OK(snap_copy_writer_new(&o, &w, &err));
	if (flags & SNAP_COPY_NO_URING)
		ASSERT_EQ(snap_copy_writer_method(w), SNAP_COPY_RW);
	else if (fx_uring_available())
		ASSERT_EQ(snap_copy_writer_method(w), SNAP_COPY_URING);
	int fds = fx_count_fds();
	static struct rec recs[NFILES];
	memset(recs, 0, sizeof(recs));
	for (unsigned i = 0; i < NFILES; i++) {
		recs[i].want_size = (int64_t)file_size(i);
		int fd = open_file(i, tag);
		ASSERT_TRUE(fd >= 0);
		int r = snap_copy_writer_begin(w, fd, fx_path("%s-f%03u", tag, i), finish, &recs[i],
					       &err);
		if (r >= 0)
			r = feed(w, i, &err);
		/* Not finished before its end, whatever the pipeline did meanwhile. */
		ASSERT_EQ(recs[i].calls, 0);
		if (r >= 0)
			r = snap_copy_writer_end(w, &err);
		if (r < 0)
			tap_fail(__FILE__, __LINE__, "%s file %u: %s", tag, i, sc_err_msg(&err));
	}
	if (snap_copy_writer_drain(w, &err) < 0)
		tap_fail(__FILE__, __LINE__, "%s drain: %s", tag, sc_err_msg(&err));
	w = snap_copy_writer_free(w);
	ASSERT_TRUE(fx_count_fds() <= fds);
	for (unsigned i = 0; i < NFILES; i++) {
		ASSERT_EQ(recs[i].calls, 1);
		ASSERT_EQ(recs[i].status, 0);
		/* finish saw every byte written (up to the trailing hole it adds itself). */
		uint64_t end = file_gappy(i) ? file_size(i) - file_size(i) / 10 : file_size(i);
		ASSERT_EQ((uint64_t)recs[i].size_at_finish, end);
		check_file(i, tag);
	}
}

TEST(writer_uring)
{
	write_all("uring", 0, 0);
}

TEST(writer_uring_qd2)
{
	write_all("uring2", 0, 2);
}

TEST(writer_no_uring)
{
	write_all("rw", SNAP_COPY_NO_URING, 0);
}

TEST(writer_no_sync)
{
	write_all("nosync", SNAP_COPY_NO_SYNC, 4);
}

TEST(writer_env_disables_uring)
{
	ASSERT_OK(setenv("SNAPCTL_NO_IO_URING", "1", 1));
	struct sc_err err = SC_ERR_INIT;
	struct snap_copy_writer *w = NULL;
	int r = snap_copy_writer_new(NULL, &w, &err);
	unsetenv("SNAPCTL_NO_IO_URING");
	ASSERT_OK(r);
	ASSERT_EQ(snap_copy_writer_method(w), SNAP_COPY_RW);
	snap_copy_writer_free(w);
	struct snap_copy_opts o = {.queue_depth = 257};
	ASSERT_ERRNO(snap_copy_writer_new(&o, &w, &err), -EINVAL);
}

/*
 * A write that fails (an fd not open for writing) is reported with the
 * file's name, by that call or a later one; later calls return it again;
 * every file begun is finished or abandoned exactly once; no fd is left.
 */
static void
write_fails(const char *tag, unsigned flags)
{
	struct snap_copy_opts o = {.flags = flags, .queue_depth = 4};
	struct sc_err err = SC_ERR_INIT;
	struct snap_copy_writer *w = NULL;
	int fds = fx_count_fds();
	ASSERT_OK(snap_copy_writer_new(&o, &w, &err));
	struct rec recs[8] = {0};
	uint8_t data[5000];
	memset(data, 'x', sizeof(data));
	int r = 0;
	unsigned begun = 0;
	for (unsigned i = 0; i < 8 && r >= 0; i++) {
		const char *p = fx_path("%s-e%u", tag, i);
		int fd = i == 2 ? (close(open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600)),
				   open(p, O_RDONLY | O_CLOEXEC))
				: open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
		ASSERT_TRUE(fd >= 0);
		r = snap_copy_writer_begin(w, fd, i == 2 ? "the-bad-one" : p, finish, &recs[i],
					   &err);
		begun++;
		if (r < 0)
			break;
		r = snap_copy_writer_write(w, data, sizeof(data), 0, &err);
		/* Ended also after a failed write: that abandons it. */
		int re = snap_copy_writer_end(w, &err);
		if (r >= 0)
			r = re;
	}
	if (r >= 0)
		r = snap_copy_writer_drain(w, &err);
	ASSERT_ERRNO(r, -EBADF);
	ASSERT_STREQ(sc_err_msg(&err), "cannot write 'the-bad-one': Bad file descriptor");
	ASSERT_ERRNO(snap_copy_writer_drain(w, &err), -EBADF);
	/* A file begun after the failure is abandoned at once. */
	struct rec late = {0};
	int fd = open(fx_path("%s-late", tag), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	ASSERT_ERRNO(snap_copy_writer_begin(w, fd, "late", finish, &late, &err), -EBADF);
	ASSERT_EQ(late.calls, 1);
	ASSERT_TRUE(late.status < 0);
	snap_copy_writer_free(w);
	ASSERT_EQ(fx_count_fds(), fds);
	ASSERT_EQ(recs[2].calls, 1);
	ASSERT_TRUE(recs[2].status < 0);
	for (unsigned i = 0; i < begun; i++)
		ASSERT_EQ(recs[i].calls, 1);
}

TEST(writer_write_fails_uring)
{
	write_fails("efail-uring", 0);
}

TEST(writer_write_fails_no_uring)
{
	write_fails("efail-rw", SNAP_COPY_NO_URING);
}

/* A finish that fails makes the writer fail with its message. */
static void
finish_fails(const char *tag, unsigned flags)
{
	struct snap_copy_opts o = {.flags = flags};
	struct sc_err err = SC_ERR_INIT;
	struct snap_copy_writer *w = NULL;
	ASSERT_OK(snap_copy_writer_new(&o, &w, &err));
	struct rec rec = {.want_size = 10, .fail_with = -EIO};
	int fd = open(fx_path("%s", tag), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	ASSERT_TRUE(fd >= 0);
	int r = snap_copy_writer_begin(w, fd, "f", finish, &rec, &err);
	if (r >= 0)
		r = snap_copy_writer_write(w, "0123456789", 10, 0, &err);
	if (r >= 0)
		r = snap_copy_writer_end(w, &err);
	if (r >= 0)
		r = snap_copy_writer_drain(w, &err);
	ASSERT_ERRNO(r, -EIO);
	ASSERT_STREQ(sc_err_msg(&err), "finish of the test file failed");
	ASSERT_EQ(rec.calls, 1);
	snap_copy_writer_free(w);
	ASSERT_EQ(rec.calls, 1);
}

TEST(writer_finish_fails_uring)
{
	finish_fails("ffail-uring", 0);
}

TEST(writer_finish_fails_no_uring)
{
	finish_fails("ffail-rw", SNAP_COPY_NO_URING);
}

int
main(int argc, char **argv)
{
	umask(022);
	return tap_main(argc, argv);
}
