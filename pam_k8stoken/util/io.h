/* Whole reads and writes, and millisecond clocks, for every unit that does I/O. */
#ifndef KT_IO_H
#define KT_IO_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

/* Milliseconds on clock id (CLOCK_MONOTONIC for deadlines, CLOCK_BOOTTIME for the cache). */
long long kt_clock_ms(clockid_t id);

/*
 * Reads until end of file or max bytes, retrying on EINTR; returns the count or -1.
 * To notice input longer than a limit L, pass max = L + 1 and check the result > L.
 */
ssize_t kt_read_all(int fd, char *buf, size_t max);

/* Writes all len bytes, retrying on EINTR and short writes; 0 or -1. */
int kt_write_all(int fd, const void *buf, size_t len);

#endif
