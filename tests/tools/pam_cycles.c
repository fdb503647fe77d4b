/*
 * pam_cycles: many pam_start / pam_authenticate / pam_end cycles in one process (libpam
 * dlopens the module at the first pam_authenticate of a handle and dlcloses it at pam_end),
 * for tests/module/test_dlopen_cycles.py. Measures what a long-lived host (a PAM-using
 * daemon) would accumulate: open descriptors, heap in use, resident memory, threads.
 *
 * usage: pam_cycles --confdir DIR --service NAME --user USER --cycles N --token FILE
 *                   [--odd-token FILE --odd-every K] [--measure C]...
 *   every cycle answers the token in FILE, except every K-th, which answers the odd one;
 *   after each cycle C named by --measure (and after the last) it prints
 *     measure CYCLE fds N heap BYTES rss_kb N threads N
 *   and for every distinct result "result RC COUNT" at the end.
 */
#include <security/pam_appl.h>
#include <dirent.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#define MAX_MEASURES 16

struct answer {
	const char *token;
};

/* The module's log lines are not needed here: dropped (pam_syslog ends in __syslog_chk). */
__attribute__((visibility("default"))) void __vsyslog_chk(int priority, int flag, const char *fmt, va_list ap);
__attribute__((visibility("default"))) void __syslog_chk(int priority, int flag, const char *fmt, ...);
__attribute__((visibility("default"))) void __vsyslog_chk(int priority, int flag, const char *fmt, va_list ap)
{
	(void)priority;
	(void)flag;
	(void)fmt;
	(void)ap;
}

__attribute__((visibility("default"))) void __syslog_chk(int priority, int flag, const char *fmt, ...)
{
	(void)priority;
	(void)flag;
	(void)fmt;
}

static int converse(int num, const struct pam_message **msg, struct pam_response **resp, void *data)
{
	const struct answer *a = data;
	struct pam_response *r = calloc((size_t)num, sizeof(*r));

	if (r == NULL)
		return PAM_BUF_ERR;
	for (int i = 0; i < num; i++)
		if (msg[i]->msg_style == PAM_PROMPT_ECHO_OFF)
			r[i].resp = strdup(a->token);
	*resp = r;
	return PAM_SUCCESS;
}

static void no_delay(int retval, unsigned usec, void *appdata)
{
	(void)retval;
	(void)usec;
	(void)appdata;
}

static long count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	long n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static long rss_kb(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long pages = -1, resident = -1;

	if (f != NULL) {
		if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
			resident = -1;
		fclose(f);
	}
	return resident < 0 ? -1 : resident * 4;
}

static void measure(long cycle)
{
	struct mallinfo2 mi = mallinfo2();

	/* opendir's own descriptor is counted: the same at every measure */
	printf("measure %ld fds %ld heap %zu rss_kb %ld threads %ld\n", cycle,
	       count_entries("/proc/self/fd"), mi.uordblks, rss_kb(), count_entries("/proc/self/task"));
}

static char *read_token(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = calloc(1, 65537);

	if (f == NULL || buf == NULL) {
		perror(path);
		exit(2);
	}
	if (fread(buf, 1, 65536, f) == 0)
		buf[0] = '\0';
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
	return buf;
}

int main(int argc, char **argv)
{
	const char *confdir = NULL, *service = NULL, *user = NULL, *token_file = NULL, *odd_file = NULL;
	long cycles = 0, odd_every = 0, measures[MAX_MEASURES], n_measures = 0;
	long results[64] = { 0 };
	char *token, *odd = NULL;

	for (int i = 1; i + 1 < argc; i += 2) {
		const char *v = argv[i + 1];

		if (strcmp(argv[i], "--confdir") == 0)
			confdir = v;
		else if (strcmp(argv[i], "--service") == 0)
			service = v;
		else if (strcmp(argv[i], "--user") == 0)
			user = v;
		else if (strcmp(argv[i], "--cycles") == 0)
			cycles = strtol(v, NULL, 10);
		else if (strcmp(argv[i], "--token") == 0)
			token_file = v;
		else if (strcmp(argv[i], "--odd-token") == 0)
			odd_file = v;
		else if (strcmp(argv[i], "--odd-every") == 0)
			odd_every = strtol(v, NULL, 10);
		else if (strcmp(argv[i], "--measure") == 0 && n_measures < MAX_MEASURES)
			measures[n_measures++] = strtol(v, NULL, 10);
		else {
			fprintf(stderr, "pam_cycles: bad argument %s\n", argv[i]);
			return 2;
		}
	}
	if (confdir == NULL || service == NULL || user == NULL || token_file == NULL || cycles <= 0) {
		fprintf(stderr, "usage: pam_cycles --confdir DIR --service NAME --user USER --cycles N "
		                "--token FILE [--odd-token FILE --odd-every K] [--measure C]...\n");
		return 2;
	}
	token = read_token(token_file);
	if (odd_file != NULL)
		odd = read_token(odd_file);
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (long cycle = 1; cycle <= cycles; cycle++) {
		struct answer a = { odd != NULL && odd_every > 0 && cycle % odd_every == 0 ? odd : token };
		struct pam_conv conv = { converse, &a };
		pam_handle_t *pamh = NULL;
		int rc = pam_start_confdir(service, user, &conv, confdir, &pamh);

		if (rc == PAM_SUCCESS) {
			pam_set_item(pamh, PAM_FAIL_DELAY, (const void *)no_delay);
			rc = pam_authenticate(pamh, PAM_SILENT);
			pam_end(pamh, rc);
		}
		results[rc >= 0 && rc < 64 ? rc : 63]++;
		for (long m = 0; m < n_measures; m++)
			if (measures[m] == cycle)
				measure(cycle);
	}
	measure(cycles);
	for (int rc = 0; rc < 64; rc++)
		if (results[rc] != 0)
			printf("result %d %ld\n", rc, results[rc]);
	free(token);
	free(odd);
	return 0;
}
