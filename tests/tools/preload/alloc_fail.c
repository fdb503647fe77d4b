/*
 * alloc_fail.so: allocation failure injection for the module tests (LD_PRELOAD, like
 * pam-u2f's fuzz/wrap.c). Inside pam_authenticate and pam_acct_mgmt (interposed here, so
 * libpam, the module, json-c, OpenSSL and glibc are all counted, but not the test driver's
 * own set-up) it counts every malloc, calloc, realloc, strdup and strndup and makes the
 * KT_ALLOC_FAIL_AT-th one fail with ENOMEM (0 or unset: none fails, only count).
 *
 * With KT_ALLOC_WARMUP=K the first K transactions (pam_authenticate calls, with the
 * pam_acct_mgmt after them) are not counted: lazy initialisation in libraries (OpenSSL's
 * providers, thousands of allocations) is then done, and the walk covers the module's steady
 * state. The first counted pam_authenticate writes a line "armed" to standard output and to
 * the file KT_TEST_SYSLOG names, so that a test can tell the transactions apart.
 *
 * With KT_ALLOC_FAIL_REPORT=FILE it appends to FILE:
 *   failed N SITE LIB  when the N-th allocation was made to fail; SITE is the innermost
 *                      caller inside pam_k8stoken.so as "module+0xOFFSET" (for addr2line),
 *                      or "outside" when the module was not on the stack; LIB is the file
 *                      name of the object that called the allocator (libjson-c.so.5, ...)
 *   count N            at exit: the allocations counted
 *
 * Under ASan this library must come before libasan in LD_PRELOAD
 * (ASAN_OPTIONS=verify_asan_link_order=0): its functions then call ASan's allocator.
 * strdup and strndup are implemented on top of malloc here, since ASan would otherwise
 * serve them without passing through malloc.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))
#define BOOT_ARENA 65536

typedef struct pam_handle pam_handle_t;

static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static void (*real_free)(void *);
static int (*real_authenticate)(pam_handle_t *, int);
static int (*real_acct_mgmt)(pam_handle_t *, int);

static unsigned long fail_at, counted, warmup, transactions;
static int armed, resolving;
static __thread int inside __attribute__((tls_model("initial-exec")));   /* our own calls (backtrace, dladdr) are not counted */

/* dlsym may calloc before the real allocator is known: a small arena, never freed. */
static unsigned char boot_arena[BOOT_ARENA] __attribute__((aligned(16)));
static size_t boot_used;

static int from_arena(const void *p)
{
	return (const unsigned char *)p >= boot_arena && (const unsigned char *)p < boot_arena + BOOT_ARENA;
}

static void *arena_alloc(size_t n)
{
	void *p;

	n = (n + 15) & ~(size_t)15;
	if (n > BOOT_ARENA - boot_used)
		return NULL;
	p = boot_arena + boot_used;
	boot_used += n;
	return p;
}

static void resolve(void)
{
	if (real_free != NULL || resolving)
		return;
	resolving = 1;
	*(void **)&real_malloc = dlsym(RTLD_NEXT, "malloc");
	*(void **)&real_calloc = dlsym(RTLD_NEXT, "calloc");
	*(void **)&real_realloc = dlsym(RTLD_NEXT, "realloc");
	*(void **)&real_free = dlsym(RTLD_NEXT, "free");
	resolving = 0;
}

static void append_line(const char *path, const char *line)
{
	int fd;

	if (path == NULL)
		return;
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	if (write(fd, line, strlen(line)) < 0) {
		/* nothing to do: the test sees a missing line */
	}
	close(fd);
}

static void report(const char *line)
{
	append_line(getenv("KT_ALLOC_FAIL_REPORT"), line);
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash != NULL ? slash + 1 : path;
}

/* The innermost return address inside pam_k8stoken.so, as an offset into it, and the object
 * that called the allocator. */
static void record_failure(unsigned long n)
{
	void *frames[64];
	char site[64] = "outside", line[256];
	const char *caller = NULL;
	Dl_info self;
	int depth;

	inside++;
	depth = backtrace(frames, 64);
	if (dladdr((void *)record_failure, &self) == 0)
		self.dli_fbase = NULL;
	for (int i = 0; i < depth; i++) {
		Dl_info info;

		if (dladdr(frames[i], &info) == 0 || info.dli_fname == NULL ||
		    info.dli_fbase == self.dli_fbase ||
		    strncmp(base_name(info.dli_fname), "libasan.so", 10) == 0)
			continue;   /* we and ASan's interceptors are not the caller */
		if (caller == NULL)
			caller = base_name(info.dli_fname);
		if (strcmp(base_name(info.dli_fname), "pam_k8stoken.so") == 0) {
			/* a return address: the call instruction is just before it */
			snprintf(site, sizeof(site), "module+0x%lx",
			         (unsigned long)((uintptr_t)frames[i] - (uintptr_t)info.dli_fbase - 1));
			break;
		}
	}
	snprintf(line, sizeof(line), "failed %lu %s %s\n", n, site, caller != NULL ? caller : "?");
	report(line);
	inside--;
}

/* True when this allocation is the one to fail. */
static int should_fail(void)
{
	if (!armed || inside)
		return 0;
	if (++counted != fail_at)
		return 0;
	record_failure(counted);
	errno = ENOMEM;
	return 1;
}

EXPORT void *malloc(size_t n)
{
	resolve();
	if (real_malloc == NULL)
		return arena_alloc(n);
	return should_fail() ? NULL : real_malloc(n);
}

EXPORT void *calloc(size_t n, size_t size)
{
	resolve();
	if (real_calloc == NULL) {
		void *p = n != 0 && size > SIZE_MAX / n ? NULL : arena_alloc(n * size);

		if (p != NULL)
			memset(p, 0, n * size);
		return p;
	}
	return should_fail() ? NULL : real_calloc(n, size);
}

EXPORT void *realloc(void *p, size_t n)
{
	resolve();
	if (from_arena(p) || real_realloc == NULL) {
		void *q = malloc(n);

		if (q != NULL && p != NULL) {
			size_t left = (size_t)(boot_arena + BOOT_ARENA - (unsigned char *)p);

			memcpy(q, p, n < left ? n : left);
		}
		return q;
	}
	return should_fail() ? NULL : real_realloc(p, n);
}

EXPORT void free(void *p)
{
	resolve();
	if (p == NULL || from_arena(p))
		return;
	real_free(p);
}

EXPORT char *strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = malloc(n);

	if (d != NULL)
		memcpy(d, s, n);
	return d;
}

EXPORT char *strndup(const char *s, size_t max)
{
	size_t n = strnlen(s, max);
	char *d = malloc(n + 1);

	if (d != NULL) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

EXPORT int pam_authenticate(pam_handle_t *pamh, int flags)
{
	int rc;

	if (real_authenticate == NULL)
		*(void **)&real_authenticate = dlsym(RTLD_NEXT, "pam_authenticate");
	if (++transactions <= warmup)
		return real_authenticate(pamh, flags);
	if (transactions == warmup + 1) {
		inside++;
		append_line(getenv("KT_TEST_SYSLOG"), "armed\n");
		if (write(STDOUT_FILENO, "armed\n", 6) < 0) {
			/* the test will miss the marker and say so */
		}
		inside--;
	}
	armed = 1;
	rc = real_authenticate(pamh, flags);
	armed = 0;
	return rc;
}

EXPORT int pam_acct_mgmt(pam_handle_t *pamh, int flags)
{
	int rc;

	if (real_acct_mgmt == NULL)
		*(void **)&real_acct_mgmt = dlsym(RTLD_NEXT, "pam_acct_mgmt");
	if (transactions <= warmup)
		return real_acct_mgmt(pamh, flags);
	armed = 1;
	rc = real_acct_mgmt(pamh, flags);
	armed = 0;
	return rc;
}

__attribute__((constructor)) static void start(void)
{
	void *warm[4];
	const char *at = getenv("KT_ALLOC_FAIL_AT"), *warm_calls = getenv("KT_ALLOC_WARMUP");

	resolve();
	fail_at = at != NULL ? strtoul(at, NULL, 10) : 0;
	warmup = warm_calls != NULL ? strtoul(warm_calls, NULL, 10) : 0;
	inside++;
	backtrace(warm, 4);   /* loads libgcc_s now, not at the first failure */
	inside--;
}

__attribute__((destructor)) static void finish(void)
{
	char line[64];

	snprintf(line, sizeof(line), "count %lu\n", counted);
	report(line);
}
