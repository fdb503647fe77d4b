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
 * pam_syslog lines go to the file named by KT_TEST_SYSLOG (or stderr) as
 * "syslog PRIORITY MESSAGE": this program interposes glibc's syslog entry points.
 *
 * usage: pam_driver --confdir DIR --service NAME --user USER [--answers FILE]
 *                   [--rhost HOST] [--sigchld reap|ignore] [--repeat N] [--acct]
 *                   [--timing] [--answers-each FILE]
 * Answers are read from FILE, each terminated by a NUL byte, in prompt order; a
 * missing answer is a NULL reply. With --repeat, FILE is re-read for every transaction;
 * --answers-each FILE instead gives each transaction the next one answer of FILE (so
 * that every repeat can present a different token; a transaction past the end of FILE
 * gets no answer).
 */
#include <security/pam_appl.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* Appends the next NUL-terminated answer of f, if any (answers may contain newlines). */
static void next_answer(FILE *f, struct answers *a)
{
	char *answer = NULL;
	size_t cap = 0;

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
	size_t before;

	if (f == NULL)
		return -1;
	do {
		before = a->n;
		next_answer(f, a);
	} while (a->n != before);
	fclose(f);
	return 0;
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
	return 0;
}

int main(int argc, char **argv)
{
	const char *confdir = NULL, *service = NULL, *user = NULL, *answers = NULL, *rhost = NULL;
	const char *sigchld = NULL, *answers_each = NULL;
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
