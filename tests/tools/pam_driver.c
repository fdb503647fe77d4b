/*
 * pam_driver: runs one PAM transaction through the real libpam (pam_start_confdir)
 * for the module tests, and reports everything observable on stdout:
 *   prompt STYLE TEXT        each conversation message (STYLE: off|on|error|info)
 *   authenticate RC NAME     pam_authenticate's result
 *   acct RC NAME             pam_acct_mgmt's result (--acct)
 *   env NAME=VALUE           K8S_* variables after a success
 *   user NAME                PAM_USER after the call (must be unchanged)
 *   faildelay USEC           the delay the stack asked for (not slept)
 *   elapsed_us USEC          pam_authenticate's own duration, CLOCK_MONOTONIC (--timing)
 *   scan N                   after pam_end, N places in this process's writable memory
 *                            holding a 16-character piece of the token in FILE
 *                            (--scan-token FILE; docs/security.md: no token residue)
 * pam_syslog lines go to the file named by KT_TEST_SYSLOG (or stderr) as
 * "syslog PRIORITY MESSAGE": this program interposes glibc's syslog entry points.
 *
 * usage: pam_driver --confdir DIR --service NAME --user USER [--answers FILE]
 *                   [--rhost HOST] [--sigchld reap|ignore] [--repeat N] [--acct]
 *                   [--timing] [--answers-each FILE] [--scan-token FILE]
 *                   [--set-user NAME] [--conv-fail CODE[:N]]
 * Answers are read from FILE, each terminated by a NUL byte, in prompt order; a
 * missing answer is a NULL reply. With --repeat, FILE is re-read for every transaction;
 * --answers-each FILE instead gives each transaction the next one answer of FILE (so
 * that every repeat can present a different token; a transaction past the end of FILE
 * gets no answer).
 * --set-user NAME changes PAM_USER between pam_authenticate and pam_acct_mgmt (as an
 * application or an earlier module could) and reports "set_user RC NAME".
 * --conv-fail CODE[:N] makes the conversation return CODE (conv_err, conv_again, buf_err,
 * system_err) from its N-th call on (default the first) and reports "conv_fail CODE".
 * With KT_TEST_GETPWNAM_ERRNO=E in the environment getpwnam_r fails with errno E (an NSS
 * error such as EIO) for every caller in the process.
 */
#include <security/pam_appl.h>
#include <dlfcn.h>
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define MAX_ANSWERS 256

struct answers {
	char *line[MAX_ANSWERS];
	size_t n, next;
};

static FILE *log_file(void)
{
	static FILE *f;
	const char *path;

	if (f != NULL)
		return f;
	path = getenv("KT_TEST_SYSLOG");
	f = path != NULL ? fopen(path, "a") : NULL;
	if (f == NULL)
		f = stderr;
	setvbuf(f, NULL, _IOLBF, 0);
	return f;
}

/*
 * Interposed over glibc (the executable is linked with -rdynamic): Debian's libpam is
 * built with _FORTIFY_SOURCE, so pam_syslog ends in __syslog_chk, and lands here.
 */
#define INTERPOSE __attribute__((visibility("default")))
INTERPOSE void __vsyslog_chk(int priority, int flag, const char *fmt, va_list ap);
INTERPOSE void __syslog_chk(int priority, int flag, const char *fmt, ...);

INTERPOSE void __vsyslog_chk(int priority, int flag, const char *fmt, va_list ap)
{
	FILE *f = log_file();

	(void)flag;
	fprintf(f, "syslog %d ", priority & LOG_PRIMASK);
	vfprintf(f, fmt, ap);
	fputc('\n', f);
}

INTERPOSE void __syslog_chk(int priority, int flag, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	__vsyslog_chk(priority, flag, fmt, ap);
	va_end(ap);
}

/* --set-user and --conv-fail (file scope: they apply to every transaction). */
static const char *set_user;
static int conv_fail_code;
static unsigned conv_fail_from, conv_calls;   /* conv_fail_from 0: never */

/* An NSS failure on demand (KT_TEST_GETPWNAM_ERRNO), else the next getpwnam_r (nss_wrapper). */
INTERPOSE int getpwnam_r(const char *name, struct passwd *pw, char *buf, size_t len,
                         struct passwd **result);

INTERPOSE int getpwnam_r(const char *name, struct passwd *pw, char *buf, size_t len,
                         struct passwd **result)
{
	static int (*next)(const char *, struct passwd *, char *, size_t, struct passwd **);
	const char *fail = getenv("KT_TEST_GETPWNAM_ERRNO");

	if (fail != NULL && atoi(fail) > 0) {
		*result = NULL;
		return atoi(fail);
	}
	if (next == NULL)
		*(void **)&next = dlsym(RTLD_NEXT, "getpwnam_r");
	if (next == NULL) {
		*result = NULL;
		return ENOSYS;
	}
	return next(name, pw, buf, len, result);
}

/* --conv-fail CODE[:N]; 0 when understood. */
static int parse_conv_fail(const char *spec)
{
	static const struct { const char *name; int code; } codes[] = {
		{ "conv_err", PAM_CONV_ERR }, { "conv_again", PAM_CONV_AGAIN },
		{ "buf_err", PAM_BUF_ERR }, { "system_err", PAM_SYSTEM_ERR },
	};
	const char *colon = strchr(spec, ':');
	size_t len = colon != NULL ? (size_t)(colon - spec) : strlen(spec);

	conv_fail_from = colon != NULL ? (unsigned)strtoul(colon + 1, NULL, 10) : 1;
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (strlen(codes[i].name) == len && strncmp(spec, codes[i].name, len) == 0) {
			conv_fail_code = codes[i].code;
			return conv_fail_from != 0 ? 0 : -1;
		}
	return -1;
}

/* Appends the next NUL-terminated answer of f, if any (answers may contain newlines). */
static void next_answer(FILE *f, struct answers *a)
{
	size_t cap = 65536;   /* no realloc leaving a copy behind for any real token */
	char *answer = malloc(cap);

	if (a->n < MAX_ANSWERS && getdelim(&answer, &cap, '\0', f) >= 0) {
		a->line[a->n] = strdup(answer);
		if (a->line[a->n] != NULL)
			a->n++;
	}
	if (answer != NULL)
		explicit_bzero(answer, cap);
	free(answer);
}

static int load_answers(const char *path, struct answers *a)
{
	FILE *f = fopen(path, "r");
	char iobuf[4096];   /* stdio's buffer holds the answers too: ours, to zero */
	size_t before;

	if (f == NULL)
		return -1;
	setvbuf(f, iobuf, _IOFBF, sizeof(iobuf));
	do {
		before = a->n;
		next_answer(f, a);
	} while (a->n != before);
	fclose(f);
	explicit_bzero(iobuf, sizeof(iobuf));
	return 0;
}

/* --scan-token: the token and the scanner's buffers live in mappings of their own, skipped. */
#define SCAN_PIECE 16
#define SCAN_TOKEN_MAX 65536
#define SCAN_CHUNK (1 << 20)
#define SCAN_REGION_MAX (1ULL << 32)   /* larger writable mappings are reservations (ASan shadow) */

static struct {
	char *token;              /* SCAN_TOKEN_MAX bytes, mmap'ed */
	size_t len;
	unsigned char *chunk;     /* SCAN_CHUNK bytes, mmap'ed */
	unsigned char *pairs;     /* 65536 flags: which two-byte starts the token has */
} scan;

static int scan_load(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	scan.token = mmap(NULL, SCAN_TOKEN_MAX, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	scan.chunk = mmap(NULL, SCAN_CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	scan.pairs = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (fd < 0 || scan.token == MAP_FAILED || scan.chunk == MAP_FAILED || scan.pairs == MAP_FAILED)
		return -1;
	n = read(fd, scan.token, SCAN_TOKEN_MAX);
	close(fd);
	if (n < SCAN_PIECE)
		return -1;
	scan.len = (size_t)n;
	for (size_t i = 0; i + SCAN_PIECE <= scan.len; i++)
		scan.pairs[(unsigned char)scan.token[i] << 8 | (unsigned char)scan.token[i + 1]] = 1;
	return 0;
}

static int is_token_piece(const unsigned char *p)
{
	if (!scan.pairs[p[0] << 8 | p[1]])
		return 0;
	for (size_t i = 0; i + SCAN_PIECE <= scan.len; i++)
		if (memcmp(scan.token + i, p, SCAN_PIECE) == 0)
			return 1;
	return 0;
}

/* Zeroes the part of chunk (a copy of [addr, addr+n)) that is the mapping [x, x+size). */
static void hide_range(unsigned long addr, size_t n, const void *x, size_t size)
{
	unsigned long lo = (unsigned long)x, hi = lo + size;
	unsigned long from = addr > lo ? addr : lo, to = addr + n < hi ? addr + n : hi;

	if (from < to)
		memset(scan.chunk + (from - addr), 0, to - from);
}

/* Counts the pieces of the token in one region, read through /proc/self/mem. */
static size_t scan_region(int mem, unsigned long start, unsigned long end)
{
	size_t found = 0;

	for (unsigned long addr = start; addr + SCAN_PIECE <= end;) {
		size_t want = end - addr < SCAN_CHUNK ? end - addr : SCAN_CHUNK;
		ssize_t n = pread(mem, scan.chunk, want, (off_t)addr);

		if (n < SCAN_PIECE)
			break;
		hide_range(addr, (size_t)n, scan.token, SCAN_TOKEN_MAX);
		hide_range(addr, (size_t)n, scan.chunk, SCAN_CHUNK);
		for (size_t i = 0; i + SCAN_PIECE <= (size_t)n; i++)
			found += is_token_piece(scan.chunk + i);
		if ((size_t)n < want || addr + (size_t)n >= end)
			break;
		addr += (size_t)n - (SCAN_PIECE - 1);
	}
	return found;
}

static void scan_memory(void)
{
	char line[512];
	size_t found = 0;
	int mem = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
	FILE *maps = fopen("/proc/self/maps", "r");

	while (mem >= 0 && maps != NULL && fgets(line, sizeof(line), maps) != NULL) {
		unsigned long start, end;
		char perms[8];

		if (sscanf(line, "%lx-%lx %7s", &start, &end, perms) != 3 || perms[0] != 'r' ||
		    perms[1] != 'w' || end - start > SCAN_REGION_MAX)
			continue;
		found += scan_region(mem, start, end);
	}
	if (maps != NULL)
		fclose(maps);
	if (mem >= 0)
		close(mem);
	printf("scan %zu\n", mem >= 0 && maps != NULL ? found : (size_t)-1);
}

static long long monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Prints text with every byte outside printable ASCII (and the backslash) as \xHH. */
static void print_escaped(const char *prefix, const char *text)
{
	fputs(prefix, stdout);
	for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
		if (*p < 0x20 || *p > 0x7e || *p == '\\')
			printf("\\x%02x", *p);
		else
			putchar(*p);
	}
	putchar('\n');
}

static int converse(int num, const struct pam_message **msg, struct pam_response **resp, void *data)
{
	struct answers *a = data;
	struct pam_response *r = calloc((size_t)num, sizeof(*r));

	if (r == NULL)
		return PAM_BUF_ERR;
	for (int i = 0; i < num; i++) {
		const char *style = "info";

		switch (msg[i]->msg_style) {
		case PAM_PROMPT_ECHO_OFF:
			style = "off";
			break;
		case PAM_PROMPT_ECHO_ON:
			style = "on";
			break;
		case PAM_ERROR_MSG:
			style = "error";
			break;
		}
		printf("prompt %s ", style);
		print_escaped("", msg[i]->msg);
		if ((msg[i]->msg_style == PAM_PROMPT_ECHO_OFF || msg[i]->msg_style == PAM_PROMPT_ECHO_ON) &&
		    a->next < a->n)
			r[i].resp = strdup(a->line[a->next++]);
	}
	if (conv_fail_from != 0 && ++conv_calls >= conv_fail_from) {
		printf("conv_fail %d\n", conv_fail_code);
		for (int i = 0; i < num; i++)
			if (r[i].resp != NULL) {
				explicit_bzero(r[i].resp, strlen(r[i].resp));
				free(r[i].resp);
			}
		free(r);
		return conv_fail_code;
	}
	*resp = r;
	return PAM_SUCCESS;
}

static void record_delay(int retval, unsigned usec, void *appdata)
{
	(void)retval;
	(void)appdata;
	printf("faildelay %u\n", usec);
}

static void reap_everything(int sig)
{
	int saved = errno;

	(void)sig;
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	errno = saved;
}

static int run_once(const char *confdir, const char *service, const char *user,
                    const char *answers_file, FILE *each, const char *rhost, int acct,
                    int timing)
{
	struct answers a = { 0 };
	struct pam_conv conv = { converse, &a };
	pam_handle_t *pamh = NULL;
	const void *item = NULL;
	int rc;

	if (answers_file != NULL && load_answers(answers_file, &a) < 0) {
		perror(answers_file);
		return 2;
	}
	if (each != NULL)
		next_answer(each, &a);
	rc = pam_start_confdir(service, user, &conv, confdir, &pamh);
	if (rc != PAM_SUCCESS) {
		printf("start %d %s\n", rc, pam_strerror(pamh, rc));
		return 2;
	}
	pam_set_item(pamh, PAM_FAIL_DELAY, (const void *)record_delay);
	if (rhost != NULL)
		pam_set_item(pamh, PAM_RHOST, rhost);
	long long started = monotonic_ns();
	rc = pam_authenticate(pamh, 0);
	long long elapsed = monotonic_ns() - started;
	printf("authenticate %d %s\n", rc, pam_strerror(pamh, rc));
	if (timing)
		printf("elapsed_us %.3f\n", (double)elapsed / 1000.0);
	if (set_user != NULL) {
		int src = pam_set_item(pamh, PAM_USER, set_user);

		printf("set_user %d ", src);
		print_escaped("", set_user);
	}
	if (acct) {
		int arc = pam_acct_mgmt(pamh, 0);
		printf("acct %d %s\n", arc, pam_strerror(pamh, arc));
	}
	char **env = pam_getenvlist(pamh);
	for (char **e = env; e != NULL && *e != NULL; e++) {
		if (strncmp(*e, "K8S_", 4) == 0)
			print_escaped("env ", *e);
		free(*e);
	}
	free(env);
	if (pam_get_item(pamh, PAM_USER, &item) == PAM_SUCCESS && item != NULL)
		print_escaped("user ", item);
	pam_end(pamh, rc);
	for (size_t i = 0; i < a.n; i++) {
		explicit_bzero(a.line[i], strlen(a.line[i]));
		free(a.line[i]);
	}
	if (scan.token != NULL)
		scan_memory();
	return 0;
}

int main(int argc, char **argv)
{
	const char *confdir = NULL, *service = NULL, *user = NULL, *answers = NULL, *rhost = NULL;
	const char *sigchld = NULL, *answers_each = NULL, *scan_token = NULL;
	FILE *each = NULL;
	long repeat = 1;
	int acct = 0, timing = 0;

	for (int i = 1; i < argc; i++) {
		const char **slot = NULL;

		if (strcmp(argv[i], "--acct") == 0) {
			acct = 1;
			continue;
		}
		if (strcmp(argv[i], "--timing") == 0) {
			timing = 1;
			continue;
		}
		if (strcmp(argv[i], "--confdir") == 0)
			slot = &confdir;
		else if (strcmp(argv[i], "--service") == 0)
			slot = &service;
		else if (strcmp(argv[i], "--user") == 0)
			slot = &user;
		else if (strcmp(argv[i], "--answers") == 0)
			slot = &answers;
		else if (strcmp(argv[i], "--rhost") == 0)
			slot = &rhost;
		else if (strcmp(argv[i], "--sigchld") == 0)
			slot = &sigchld;
		else if (strcmp(argv[i], "--answers-each") == 0)
			slot = &answers_each;
		else if (strcmp(argv[i], "--set-user") == 0)
			slot = &set_user;
		else if (strcmp(argv[i], "--conv-fail") == 0 && i + 1 < argc) {
			if (parse_conv_fail(argv[++i]) < 0) {
				fprintf(stderr, "pam_driver: bad --conv-fail %s\n", argv[i]);
				return 2;
			}
			continue;
		}
		else if (strcmp(argv[i], "--scan-token") == 0)
			slot = &scan_token;
		else if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc) {
			repeat = strtol(argv[++i], NULL, 10);
			continue;
		}
		if (slot == NULL || i + 1 >= argc) {
			fprintf(stderr, "pam_driver: bad argument %s\n", argv[i]);
			return 2;
		}
		*slot = argv[++i];
	}
	if (confdir == NULL || service == NULL) {
		fprintf(stderr, "pam_driver: --confdir and --service are required\n");
		return 2;
	}
	if (sigchld != NULL && strcmp(sigchld, "ignore") == 0)
		signal(SIGCHLD, SIG_IGN);
	else if (sigchld != NULL && strcmp(sigchld, "reap") == 0)
		signal(SIGCHLD, reap_everything);
	if (scan_token != NULL && scan_load(scan_token) < 0) {
		fprintf(stderr, "pam_driver: cannot load %s for --scan-token\n", scan_token);
		return 2;
	}
	if (answers_each != NULL && (each = fopen(answers_each, "r")) == NULL) {
		perror(answers_each);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (long i = 0; i < repeat; i++)
		if (run_once(confdir, service, user, answers, each, rhost, acct, timing) != 0)
			return 2;
	if (each != NULL)
		fclose(each);
	return 0;
}
