/*
 * LD_PRELOAD shim for the end-to-end sshd tests: catches pam_syslog()/pam_vsyslog() (the
 * module's log) and glibc's syslog() (libpam's own messages) and appends them to the file
 * named by KT_E2E_SYSLOG as "syslog PRIORITY MESSAGE" lines.
 *
 * Why not pam_wrapper's own pam_syslog (which prints to stderr at PAM_WRAPPER_DEBUGLEVEL)?
 * For keyboard-interactive sshd runs PAM in a forked child that empties its environment
 * (auth-pam.c sshpam_thread: environ[0] = NULL), so pam_wrapper no longer sees
 * PAM_WRAPPER_DEBUGLEVEL there and drops every message below LOG_ERR. The file name is
 * therefore taken once, in a constructor, and the file is opened for each message (sshd
 * closes inherited descriptors at start-up).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

struct pam_handle;

static char log_path[4096];

__attribute__((constructor)) static void shim_init(void)
{
	const char *p = getenv("KT_E2E_SYSLOG");

	if (p != NULL && strlen(p) < sizeof(log_path))
		strcpy(log_path, p);
}

static void shim_log(int priority, const char *fmt, va_list ap)
{
	char buf[8192];
	int n, m, fd;

	if (log_path[0] == '\0')
		return;
	n = snprintf(buf, sizeof(buf), "syslog %d [%ld] ", priority & LOG_PRIMASK, (long)getpid());
	if (n < 0)
		return;
	m = vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
	if (m < 0)
		return;
	n += m;
	if ((size_t)n > sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	buf[n++] = '\n';
	fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	if (write(fd, buf, (size_t)n) < 0) {
		/* nothing to do */
	}
	close(fd);
}

#define EXPORT __attribute__((visibility("default")))

EXPORT void pam_vsyslog(const struct pam_handle *pamh, int priority, const char *fmt, va_list ap)
{
	(void)pamh;
	shim_log(priority, fmt, ap);
}

EXPORT void pam_syslog(const struct pam_handle *pamh, int priority, const char *fmt, ...)
{
	va_list ap;

	(void)pamh;
	va_start(ap, fmt);
	shim_log(priority, fmt, ap);
	va_end(ap);
}

EXPORT void vsyslog(int priority, const char *fmt, va_list ap)
{
	shim_log(priority, fmt, ap);
}

EXPORT void syslog(int priority, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	shim_log(priority, fmt, ap);
	va_end(ap);
}

EXPORT void __vsyslog_chk(int priority, int flag, const char *fmt, va_list ap)
{
	(void)flag;
	shim_log(priority, fmt, ap);
}

EXPORT void __syslog_chk(int priority, int flag, const char *fmt, ...)
{
	va_list ap;

	(void)flag;
	va_start(ap, fmt);
	shim_log(priority, fmt, ap);
	va_end(ap);
}
