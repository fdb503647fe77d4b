/*
 * pam_signals: one pam_authenticate in a host that gets signals while it runs, for
 * tests/module/test_signals.py. The test sends SIGINT, SIGTERM, SIGALRM or SIGCHLD from
 * outside at a random moment; with --handlers this host catches them (no SA_RESTART, so
 * system calls in the module return EINTR), with --reap its SIGCHLD handler reaps every
 * child (as some daemons do), with --alarm-us N it also sends itself SIGALRM every N µs.
 * Without --handlers the signals keep their default action (the host dies).
 *
 * usage: pam_signals --confdir DIR --service NAME --user USER --token FILE
 *                    [--handlers] [--reap] [--alarm-us N]
 * Prints "started PID", "authenticate RC" and "signals N" (signals caught). pam_syslog lines
 * go to the file KT_TEST_SYSLOG names.
 */
#include <security/pam_appl.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

static volatile sig_atomic_t caught, reap;
static char *token;

#define INTERPOSE __attribute__((visibility("default")))
INTERPOSE void __vsyslog_chk(int priority, int flag, const char *fmt, va_list ap);
INTERPOSE void __syslog_chk(int priority, int flag, const char *fmt, ...);

INTERPOSE void __vsyslog_chk(int priority, int flag, const char *fmt, va_list ap)
{
	const char *path = getenv("KT_TEST_SYSLOG");
	FILE *f = path != NULL ? fopen(path, "a") : NULL;

	(void)flag;
	if (f == NULL)
		return;
	fprintf(f, "syslog %d ", priority & LOG_PRIMASK);
	vfprintf(f, fmt, ap);
	fputc('\n', f);
	fclose(f);
}

INTERPOSE void __syslog_chk(int priority, int flag, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	__vsyslog_chk(priority, flag, fmt, ap);
	va_end(ap);
}

static void on_signal(int sig)
{
	int saved = errno;

	caught++;
	if (sig == SIGCHLD && reap)
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
	errno = saved;
}

static int converse(int num, const struct pam_message **msg, struct pam_response **resp, void *data)
{
	struct pam_response *r = calloc((size_t)num, sizeof(*r));

	(void)data;
	if (r == NULL)
		return PAM_BUF_ERR;
	for (int i = 0; i < num; i++)
		if (msg[i]->msg_style == PAM_PROMPT_ECHO_OFF)
			r[i].resp = strdup(token);
	*resp = r;
	return PAM_SUCCESS;
}

static void no_delay(int retval, unsigned usec, void *appdata)
{
	(void)retval;
	(void)usec;
	(void)appdata;
}

int main(int argc, char **argv)
{
	const char *confdir = NULL, *service = NULL, *user = NULL, *token_file = NULL;
	struct pam_conv conv = { converse, NULL };
	pam_handle_t *pamh = NULL;
	long alarm_us = 0;
	int handlers = 0, rc;
	FILE *f;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--handlers") == 0)
			handlers = 1;
		else if (strcmp(argv[i], "--reap") == 0)
			reap = 1;
		else if (i + 1 < argc && strcmp(argv[i], "--confdir") == 0)
			confdir = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--service") == 0)
			service = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--user") == 0)
			user = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--token") == 0)
			token_file = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--alarm-us") == 0)
			alarm_us = strtol(argv[++i], NULL, 10);
		else {
			fprintf(stderr, "pam_signals: bad argument %s\n", argv[i]);
			return 2;
		}
	}
	if (confdir == NULL || service == NULL || user == NULL || token_file == NULL ||
	    (f = fopen(token_file, "r")) == NULL) {
		fprintf(stderr, "usage: pam_signals --confdir DIR --service NAME --user USER "
		                "--token FILE [--handlers] [--reap] [--alarm-us N]\n");
		return 2;
	}
	token = calloc(1, 65537);
	if (token == NULL || fread(token, 1, 65536, f) == 0)
		return 2;
	fclose(f);
	token[strcspn(token, "\n")] = '\0';
	setvbuf(stdout, NULL, _IOLBF, 0);
	{
		struct sigaction sa;

		/* Without handlers, the default action even where the test runs in a background
		 * job, whose shell left SIGINT ignored (an ignored disposition survives exec). */
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = handlers ? on_signal : SIG_DFL;   /* no SA_RESTART: EINTR */
		sigemptyset(&sa.sa_mask);
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGALRM, &sa, NULL);
		if (handlers)
			sigaction(SIGCHLD, &sa, NULL);
	}
	printf("started %ld\n", (long)getpid());
	rc = pam_start_confdir(service, user, &conv, confdir, &pamh);
	if (rc != PAM_SUCCESS)
		return 2;
	pam_set_item(pamh, PAM_FAIL_DELAY, (const void *)no_delay);
	if (alarm_us > 0) {
		struct itimerval it = { { 0, alarm_us }, { 0, alarm_us } };

		setitimer(ITIMER_REAL, &it, NULL);
	}
	rc = pam_authenticate(pamh, PAM_SILENT);
	if (alarm_us > 0) {
		struct itimerval off = { { 0, 0 }, { 0, 0 } };

		setitimer(ITIMER_REAL, &off, NULL);
	}
	printf("authenticate %d\n", rc);
	pam_end(pamh, rc);
	printf("signals %d\n", (int)caught);
	free(token);
	return 0;
}
