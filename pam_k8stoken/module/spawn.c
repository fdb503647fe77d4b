#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "io.h"
#include "review.h"
#include "secure.h"
#include "spawn.h"

#define OUTPUT_MAX (KT_REPLY_MAX + KT_PROTO_HEADER_MAX + 8)

/* Waits for fd to be ready for `events` before the deadline; 1 ready, 0 timeout, -1 error. */
static int wait_fd(int fd, short events, long long deadline)
{
	for (;;) {
		long long left = deadline - kt_clock_ms(CLOCK_MONOTONIC);
		struct pollfd p = { .fd = fd, .events = events };
		int n;

		if (left <= 0)
			return 0;
		n = poll(&p, 1, (int)(left > 60000 ? 60000 : left));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n > 0)
			return 1;
	}
}

static pid_t start_helper(const char *helper, const char *conf_path, int only,
                          const char *const *extra, int child_fd)
{
	static char *const envp[] = { "PATH=/usr/bin:/bin", "LANG=C", NULL };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	char server[16];
	char *argv[6 + KT_SPAWN_EXTRA_MAX] = { (char *)"k8stoken-review", (char *)"--conf",
	                                       (char *)conf_path, NULL };
	size_t argc = 3;
	pid_t pid = -1;
	int err;

	if (only >= 0) {
		snprintf(server, sizeof(server), "%d", only);
		argv[3] = (char *)"--server";
		argv[4] = server;
		argc = 5;
	}
	for (size_t i = 0; extra != NULL && extra[i] != NULL && i < KT_SPAWN_EXTRA_MAX; i++)
		argv[argc++] = (char *)(uintptr_t)extra[i];
	sigemptyset(&none);
	sigfillset(&all);
	if (posix_spawn_file_actions_init(&fa) != 0)
		return -1;
	if (posix_spawnattr_init(&attr) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		return -1;
	}
	err = posix_spawn_file_actions_adddup2(&fa, child_fd, 0);
	err = err ? err : posix_spawn_file_actions_adddup2(&fa, child_fd, 1);
	err = err ? err : posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	err = err ? err : posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	/* The host's signal mask and handlers must not leak into the helper. */
	err = err ? err : posix_spawnattr_setsigmask(&attr, &none);
	err = err ? err : posix_spawnattr_setsigdefault(&attr, &all);
	err = err ? err : posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	if (err == 0 && posix_spawn(&pid, helper, &fa, &attr, argv, envp) != 0)
		pid = -1;
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	return pid;
}

static int send_token(int fd, const char *token, size_t len, long long deadline)
{
	while (len > 0) {
		ssize_t n;

		if (wait_fd(fd, POLLOUT, deadline) != 1)
			return -1;
		n = send(fd, token, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			return -1;
		token += n;
		len -= (size_t)n;
	}
	return shutdown(fd, SHUT_WR);
}

/* Reads until EOF; 0 done, -1 timeout or error, -2 output larger than any valid record. */
static int read_output(int fd, struct kt_secret *out, long long deadline)
{
	for (;;) {
		ssize_t n;

		if (wait_fd(fd, POLLIN, deadline) != 1)
			return -1;
		n = recv(fd, out->p + out->len, OUTPUT_MAX - out->len, MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			return 0;
		out->len += (size_t)n;
		if (out->len == OUTPUT_MAX)
			return -2;
	}
}

/*
 * Kills (if still running) and reaps our own child. Returns 0 when it exited with
 * status 0, or when its status cannot be known because the host reaped it first
 * (ECHILD: a SIGCHLD handler, or SIGCHLD ignored); -1 otherwise. A helper that fails
 * after writing a whole-looking record is not trusted.
 */
static int finish_child(pid_t pid, int pidfd, int kill_it, long long deadline)
{
	int status = 0;
	pid_t r;

	if (!kill_it && pidfd >= 0 && wait_fd(pidfd, POLLIN, deadline) != 1)
		kill_it = 1;
	if (kill_it) {
		if (pidfd >= 0)
			pidfd_send_signal(pidfd, SIGKILL, NULL, 0);
		else
			kill(pid, SIGKILL);
	}
	while ((r = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
		;
	if (r < 0)
		return errno == ECHILD ? 0 : -1;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

enum kt_reason kt_spawn_review(const char *helper, const char *conf_path, int only,
                               const char *token, size_t token_len, long deadline_ms,
                               struct kt_helper_result *res)
{
	return kt_spawn_review_args(helper, conf_path, only, NULL, token, token_len, deadline_ms, res);
}

enum kt_reason kt_spawn_review_args(const char *helper, const char *conf_path, int only,
                                    const char *const *extra, const char *token,
                                    size_t token_len, long deadline_ms,
                                    struct kt_helper_result *res)
{
	long long deadline = kt_clock_ms(CLOCK_MONOTONIC) + deadline_ms;
	int sv[2] = { -1, -1 }, pidfd = -1, rd, exited;
	struct kt_secret out;
	pid_t pid;

	memset(res, 0, sizeof(*res));
	res->reason = KT_R_HELPER;
	/* allocated first: nothing to close when it fails */
	if (kt_secret_alloc(&out, OUTPUT_MAX + 1) < 0)
		return res->reason = KT_R_NOMEM;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		snprintf(res->detail, sizeof(res->detail), "socketpair: %s", strerror(errno));
		res->reason = KT_R_SYSTEM;
		goto out;
	}
	pid = start_helper(helper, conf_path, only, extra, sv[1]);
	close(sv[1]);
	sv[1] = -1;
	if (pid < 0) {
		snprintf(res->detail, sizeof(res->detail), "cannot run %.200s", helper);
		goto out;
	}
	pidfd = pidfd_open(pid, 0);   /* close-on-exec by definition */

	if (send_token(sv[0], token, token_len, deadline) < 0) {
		rd = -1;
	} else {
		rd = read_output(sv[0], &out, deadline);
	}
	exited = finish_child(pid, pidfd, rd != 0, deadline);
	if (rd == -1 && kt_clock_ms(CLOCK_MONOTONIC) >= deadline) {
		res->reason = KT_R_TIMEOUT;
		snprintf(res->detail, sizeof(res->detail), "no answer within %ld ms", deadline_ms);
	} else if (rd != 0) {
		snprintf(res->detail, sizeof(res->detail), "helper output unreadable");
	} else if (exited != 0) {
		snprintf(res->detail, sizeof(res->detail), "helper exited with a failure status");
	} else if (kt_proto_parse(out.p, out.len, res) != KT_R_OK) {
		snprintf(res->detail, sizeof(res->detail), "helper gave an incomplete answer");
	} else {
		char escaped[sizeof(res->detail)];

		memcpy(escaped, res->detail, sizeof(escaped));
		kt_unescape(escaped, res->detail, sizeof(res->detail));   /* checked by kt_proto_parse */
	}
out:
	if (pidfd >= 0)
		close(pidfd);
	if (sv[0] >= 0)
		close(sv[0]);
	kt_secret_free(&out);
	return res->reason;
}
