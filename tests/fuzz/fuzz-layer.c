/*
 * libFuzzer target for layer apply: the input is a layer stream (tar,
 * tar+gzip or tar+zstd, told by its first bytes) unpacked into a scratch
 * folder with low limits, in the native form of whiteouts or, for inputs of
 * odd length, the overlay form. Built only with -Dfuzz=true; run it with
 * tests/fuzz/run-fuzz.sh layer.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "layer.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = memfd_create("layer", MFD_CLOEXEC);
	if (fd < 0)
		abort();
	for (size_t done = 0; done < size;) {
		ssize_t n = write(fd, data + done, size - done);
		if (n <= 0)
			abort();
		done += (size_t)n;
	}
	lseek(fd, 0, SEEK_SET);
	char dir[] = "/tmp/fuzz-layer.XXXXXX";
	if (!mkdtemp(dir))
		abort();
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		abort();
	struct snap_layer_apply_opts o = {
		.limits = {.max_entries = 256, .max_bytes = 1 << 20, .max_path = 1024},
		.copy = {.flags = SNAP_COPY_NO_SYNC},
	};
	struct sc_err err = SC_ERR_INIT;
	(void)snap_layer_unpack(fd, dfd, size & 1, &o, NULL, NULL, NULL, &err);
	close(dfd);
	close(fd);
	if (sc_rm_rf_at(AT_FDCWD, dir) < 0)
		abort(); /* whatever an apply made, it must be removable */
	return 0;
}
