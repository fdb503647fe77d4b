/*
 * pam_threads: runs pam_authenticate in several threads at once, each with its own PAM
 * handle, for the thread test (tests/module/test_threads.py; built with -fsanitize=thread
 * in the TSan build, where any data race is a report).
 *
 * usage: pam_threads --confdir DIR --service NAME --rounds N SPEC...
 *   SPEC is USER:TOKEN_FILE:EXPECTED, one thread each; EXPECTED is the PAM result every
 *   round must give (a number). Threads start together (a barrier) and run N rounds each.
 * Prints "thread I round R RC" per transaction and "threads ok" or "threads FAILED"; exit 0
 * only when every result was the expected one. The module's pam_syslog lines go to the
 * file KT_TEST_SYSLOG names (interposed, as in pam_driver.c).
 */
#include <security/pam_appl.h>
#include <pthread.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#define MAX_THREADS 64

struct job {
	int index;
	const char *user;
	char *token;
	int expected;
	int failures;
};

static const char *confdir, *service;
static long rounds = 1;
static pthread_barrier_t start_line;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static FILE *log_out;

#define INTERPOSE __attribute__((visibility("default")))
INTERPOSE void __vsyslog_chk(int priority, int flag, const char *fmt, va_list ap);
INTERPOSE void __syslog_chk(int priority, int flag, const char *fmt, ...);

INTERPOSE void __vsyslog_chk(int priority, int flag, const char *fmt, va_list ap)
{
	(void)flag;
	pthread_mutex_lock(&log_lock);
	fprintf(log_out != NULL ? log_out : stderr, "syslog %d ", priority & LOG_PRIMASK);
	vfprintf(log_out != NULL ? log_out : stderr, fmt, ap);
	fputc('\n', log_out != NULL ? log_out : stderr);
	pthread_mutex_unlock(&log_lock);
}

INTERPOSE void __syslog_chk(int priority, int flag, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	__vsyslog_chk(priority, flag, fmt, ap);
	va_end(ap);
}

/* Answers every echo-off prompt with the job's token (one prompt: the token fits). */
static int converse(int num, const struct pam_message **msg, struct pam_response **resp, void *data)
{
	struct job *job = data;
	struct pam_response *r = calloc((size_t)num, sizeof(*r));

	if (r == NULL)
		return PAM_BUF_ERR;
	for (int i = 0; i < num; i++)
		if (msg[i]->msg_style == PAM_PROMPT_ECHO_OFF)
			r[i].resp = strdup(job->token);
	*resp = r;
	return PAM_SUCCESS;
}

/* PAM_FAIL_DELAY with a function that does nothing: the failure delay is not slept. */
static void no_delay(int retval, unsigned usec, void *appdata)
{
	(void)retval;
	(void)usec;
	(void)appdata;
}

static void *run_job(void *arg)
{
	struct job *job = arg;
	struct pam_conv conv = { converse, job };

	pthread_barrier_wait(&start_line);
	for (long round = 0; round < rounds; round++) {
		pam_handle_t *pamh = NULL;
		int rc = pam_start_confdir(service, job->user, &conv, confdir, &pamh);

		if (rc == PAM_SUCCESS) {
			pam_set_item(pamh, PAM_FAIL_DELAY, (const void *)no_delay);
			rc = pam_authenticate(pamh, PAM_SILENT);
			pam_end(pamh, rc);
		} else {
			rc = -1;
		}
		pthread_mutex_lock(&log_lock);
		printf("thread %d round %ld %d\n", job->index, round, rc);
		pthread_mutex_unlock(&log_lock);
		if (rc != job->expected)
			job->failures++;
	}
	return NULL;
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = calloc(1, 65537);
	size_t n;

	if (f == NULL || buf == NULL) {
		perror(path);
		exit(2);
	}
	n = fread(buf, 1, 65536, f);
	fclose(f);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\0'))
		buf[--n] = '\0';
	return buf;
}

int main(int argc, char **argv)
{
	struct job jobs[MAX_THREADS];
	pthread_t threads[MAX_THREADS];
	int n = 0, failures = 0;
	const char *log_path = getenv("KT_TEST_SYSLOG");

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--confdir") == 0 && i + 1 < argc) {
			confdir = argv[++i];
		} else if (strcmp(argv[i], "--service") == 0 && i + 1 < argc) {
			service = argv[++i];
		} else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
			rounds = strtol(argv[++i], NULL, 10);
		} else if (n < MAX_THREADS) {
			char *spec = argv[i], *c1 = strchr(spec, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;

			if (c2 == NULL) {
				fprintf(stderr, "pam_threads: bad spec %s\n", spec);
				return 2;
			}
			*c1 = *c2 = '\0';
			jobs[n] = (struct job){ n, spec, read_file(c1 + 1), atoi(c2 + 1), 0 };
			n++;
		}
	}
	if (confdir == NULL || service == NULL || n == 0) {
		fprintf(stderr, "usage: pam_threads --confdir DIR --service NAME [--rounds N] "
		                "USER:TOKEN_FILE:EXPECTED...\n");
		return 2;
	}
	log_out = log_path != NULL ? fopen(log_path, "a") : NULL;
	if (log_out != NULL)
		setvbuf(log_out, NULL, _IOLBF, 0);
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* nss_wrapper (the test's user database) loads its files on the first lookup, and that
	 * first load is not thread-safe: one lookup here, before the threads, as a host's own
	 * start-up would have done. The module's lookups then race only with each other. */
	(void)getpwnam("root");
	pthread_barrier_init(&start_line, NULL, (unsigned)n);
	for (int i = 0; i < n; i++)
		if (pthread_create(&threads[i], NULL, run_job, &jobs[i]) != 0) {
			perror("pthread_create");
			return 2;
		}
	for (int i = 0; i < n; i++) {
		pthread_join(threads[i], NULL);
		failures += jobs[i].failures;
		free(jobs[i].token);
	}
	pthread_barrier_destroy(&start_line);
	printf("threads %s\n", failures == 0 ? "ok" : "FAILED");
	return failures == 0 ? 0 : 1;
}
