/* Small file operations shared by the cache units (cache.c, cache_ops.c). */
#ifndef KT_CACHE_IO_H
#define KT_CACHE_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define KT_CACHE_TEMP_NAME_SIZE 24

/* The kernel's boot id (36 characters) into out. */
int kt_cache_boot_id(char out[40]);
/*
 * Opens name under dirfd without following a symlink or waiting on a FIFO, and only
 * if it is a regular file of ours, private (no group/other bits), at most max_size.
 */
int kt_cache_open_private(int dirfd, const char *name, int flags, size_t max_size);
/* Creates "t-<16 random hex>" exclusively for writing; its name goes to tmp. */
int kt_cache_create_temp(int dirfd, char tmp[KT_CACHE_TEMP_NAME_SIZE]);
/*
 * Whether len bytes written from offset 0 stay within the caller's RLIMIT_FSIZE. A write
 * past it would raise SIGXFSZ, which kills the host process (sshd, sudo) by default: such
 * a write is skipped instead (errno EFBIG).
 */
bool kt_cache_write_fits(size_t len);
/*
 * Replaces name under dirfd with head[0..head_len) followed by tail[0..tail_len) (tail may
 * be NULL) atomically: a temporary file renamed over it. Skipped when it would pass
 * RLIMIT_FSIZE; a write that cannot complete leaves no temporary file. 0, or -1 and errno.
 */
int kt_cache_write_file(int dirfd, const char *name, const char *head, size_t head_len,
                        const char *tail, size_t tail_len);

#endif
