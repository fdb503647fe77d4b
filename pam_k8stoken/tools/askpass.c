/*
 * k8stoken-askpass: answers pam_k8stoken's prompts for ssh (SSH_ASKPASS) and sudo (SUDO_ASKPASS).
 *
 *   k8stoken-askpass PROMPT
 *
 * The token comes from the file named by K8STOKEN_FILE (preferred) or from K8STOKEN. The
 * OpenSSH client cuts every answer at 1,023 characters and sudo refuses answers of 512 or more,
 * so the token is split into parts of at most 500 characters (K8STOKEN_PART_SIZE, 1..1023,
 * overrides that); pam_k8stoken asks "Kubernetes token: " and then "Kubernetes token (part N): "
 * while the joined text is not yet a complete JWT. This program is stateless: it prints part N
 * for a prompt containing "(part N)", part 1 otherwise, and an empty line past the last part.
 *
 * Only prompts that contain "Kubernetes token" are answered (anything else, e.g. ssh's host key
 * confirmation or another module's password prompt: no output, exit 1), so the module's
 * `prompt` setting must keep that text.
 *
 * Opt-in (K8STOKEN_ANSWER_PASSWORD=1): a password prompt of one of three known shapes -- ssh's
 * "USER@HOST's password: " (password method), pam_unix's "Password: " (also with ssh's
 * "(USER@HOST) " prefix) and sudo's "[sudo] password for USER: " -- gets the whole token in one
 * answer, for a stack that asks for a password and hands it to pam_k8stoken (use_first_pass,
 * the pam-auth-update profile) or for sshd's password method. Such a stack cannot ask for parts,
 * so a token longer than one answer can carry (sudo: 511 characters, ssh: 1,023) is refused
 * with a message instead of being cut. Off by default: a password prompt may belong to a module
 * that keeps or forwards what it is given, and a password-change prompt ("New password: ") is
 * never answered.
 *
 * The partition is deterministic and never puts a part boundary where the text so far already
 * looks like a complete token (kt_token_shape), since the module would stop asking there.
 * The answer and its newline go out in one write(2): ssh reads at most 1,023 bytes and closes
 * the pipe, and a helper that dies of SIGPIPE on a second write makes ssh send an empty answer.
 *
 * The token is never printed anywhere else, never logged and never put in argv.
 * Exit: 0 answered (possibly with an empty line), 1 not answered.
 */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io.h"
#include "number.h"
#include "private_file.h"
#include "secure.h"
#include "token.h"

#define PROG "k8stoken-askpass"
#define PROMPT_MARK "Kubernetes token"
#define PART_MARK "(part "
#define DEFAULT_PART_SIZE 500
#define MAX_PART_SIZE 1023       /* the OpenSSH client's limit per answer */
#define MAX_TOKEN 65536          /* well above any real token and max_token_size's default */
#define MAX_PART_NUMBER 100000
#define SSH_MAX_ANSWER 1023      /* the OpenSSH client keeps at most this much of an answer */
#define SUDO_MAX_ANSWER 511      /* sudo 1.9 refuses an answer of 512 characters or more */
#define ANSWER_PASSWORD_ENV "K8STOKEN_ANSWER_PASSWORD"

static void usage(FILE *to)
{
	fprintf(to,
	        "usage: " PROG " PROMPT\n"
	        "\n"
	        "Answers pam_k8stoken's prompts with a Kubernetes ServiceAccount token, part by part.\n"
	        "Use it as SSH_ASKPASS (with SSH_ASKPASS_REQUIRE=force) or as SUDO_ASKPASS (sudo -A);\n"
	        "`kubectl k8stoken ssh|sudo` sets all of this up for you.\n"
	        "\n"
	        "Token source (first that is set):\n"
	        "  K8STOKEN_FILE   file holding the token (one trailing newline is ignored)\n"
	        "  K8STOKEN        the token itself\n"
	        "Other:\n"
	        "  K8STOKEN_PART_SIZE   longest part in characters, 1..1023 (default 500)\n"
	        "  K8STOKEN_ANSWER_PASSWORD=1   also answer a password prompt (ssh's\n"
	        "                       \"USER@HOST's password: \", \"Password: \", sudo's \"[sudo] password\n"
	        "                       for USER: \") with the whole token in one answer, when it fits:\n"
	        "                       1023 characters (sudo: 511); default 0 (off)\n"
	        "\n"
	        "Only prompts containing \"" PROMPT_MARK "\" are answered; \"(part N)\" in the prompt\n"
	        "selects part N, otherwise part 1. Past the last part an empty line is printed.\n"
	        "Any other prompt gets no answer and exit status 1.\n");
}

static int fail(const char *msg)
{
	fprintf(stderr, PROG ": %s\n", msg);
	return -1;
}

/*
 * The part the prompt asks for: 1 without "(part N)", N with it, 0 when the prompt is not one
 * of the module's token prompts (or names a malformed part).
 * The "(user@host) " prefix ssh adds comes before the module's text, so the marks are looked
 * for after the last occurrence of "Kubernetes token".
 */
static long wanted_part(const char *prompt)
{
	const char *mark = NULL, *p, *digits, *end;
	unsigned long long n;

	for (p = prompt; (p = strstr(p, PROMPT_MARK)) != NULL; p++)
		mark = p;
	if (mark == NULL)
		return 0;
	p = strstr(mark + strlen(PROMPT_MARK), PART_MARK);
	if (p == NULL)
		return 1;
	digits = p + strlen(PART_MARK);
	end = strchr(digits, ')');
	if (end == NULL)
		return 0;
	if (!kt_parse_uint_n(digits, (size_t)(end - digits), 1, MAX_PART_NUMBER, &n))
		return 0;
	return (long)n;
}

/* s[0..n) is a non-empty run of characters that ssh or sudo put in for a user or host name. */
static int is_name(const char *s, size_t n)
{
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= ' ' || s[i] == '(' || s[i] == ')' || s[i] == '[' ||
		    s[i] == ']' || s[i] == '\'' || (unsigned char)s[i] >= 0x7f)
			return 0;
	return 1;
}

/* s starts with prefix; *rest is what follows it. */
static int take(const char *s, const char *prefix, const char **rest)
{
	size_t n = strlen(prefix);

	if (strncmp(s, prefix, n) != 0)
		return 0;
	*rest = s + n;
	return 1;
}

/* s is NAME followed by tail, exactly (NAME as is_name). */
static int name_then(const char *s, const char *tail)
{
	size_t n = strlen(s), t = strlen(tail);

	return n > t && strcmp(s + n - t, tail) == 0 && is_name(s, n - t);
}

/*
 * The longest answer that reaches the module for a password prompt of a known shape, 0 for
 * any other prompt (a password change, a passphrase, a question): ssh's password method
 * "USER@HOST's password: ", pam_unix's "Password: " (through ssh keyboard-interactive with
 * "(USER@HOST) " before it) and sudo's "[sudo] password for USER: ". One trailing space is
 * optional. Under sudo (its prompt, or sudo as our parent) the limit is sudo's 511.
 */
static size_t password_prompt_limit(const char *prompt, int under_sudo)
{
	char text[512];
	const char *rest;
	size_t n = strlen(prompt);

	if (n == 0 || n >= sizeof text)
		return 0;
	memcpy(text, prompt, n + 1);
	if (text[n - 1] == ' ')
		text[--n] = '\0';
	if (take(text, "[sudo] password for ", &rest))
		return name_then(rest, ":") ? SUDO_MAX_ANSWER : 0;
	if (text[0] == '(') {          /* ssh keyboard-interactive: "(USER@HOST) " + the PAM text */
		const char *close = strchr(text, ')');

		if (close == NULL || close[1] != ' ' || !is_name(text + 1, (size_t)(close - text - 1)))
			return 0;
		rest = close + 2;
	} else {
		rest = text;
	}
	if (strcmp(rest, "Password:") == 0)
		return under_sudo ? SUDO_MAX_ANSWER : SSH_MAX_ANSWER;
	if (rest == text && name_then(text, "'s password:"))
		return under_sudo ? SUDO_MAX_ANSWER : SSH_MAX_ANSWER;
	return 0;
}

/* Our parent is sudo (sudo -A runs the askpass as its direct child): its answer limit holds. */
static int parent_is_sudo(void)
{
	char path[64], comm[32];
	ssize_t n;
	int fd;

	snprintf(path, sizeof path, "/proc/%ld/comm", (long)getppid());
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = kt_read_all(fd, comm, sizeof comm - 1);
	close(fd);
	if (n <= 0)
		return 0;
	comm[n] = '\0';
	return strcmp(comm, "sudo\n") == 0;
}

/* K8STOKEN_ANSWER_PASSWORD: 1 on, unset/empty/0 off, anything else -1 (refuse to guess). */
static int answer_password_setting(void)
{
	const char *v = getenv(ANSWER_PASSWORD_ENV);

	if (v == NULL || v[0] == '\0' || strcmp(v, "0") == 0)
		return 0;
	if (strcmp(v, "1") == 0)
		return 1;
	return -1;
}

/* K8STOKEN_FILE is the user's own choice of file: any owner, and a symbolic link is fine
 * (kubelet's projected tokens are reached through one). Only its type and size are checked. */
static const struct kt_file_words token_file_words[KT_FILE__COUNT] = {
	[KT_FILE_OPEN]    = { "cannot open K8STOKEN_FILE ", "", KT_DETAIL_ERRNO },
	[KT_FILE_TYPE]    = { "K8STOKEN_FILE ", " is not a regular file", KT_DETAIL_NONE },
	[KT_FILE_SIZE]    = { "K8STOKEN_FILE ", " is too large for a token", KT_DETAIL_NONE },
	[KT_FILE_READ]    = { "cannot read K8STOKEN_FILE ", "", KT_DETAIL_ERRNO },
};

static const struct kt_file_policy token_file_policy = {
	.owner_rule = KT_OWNER_ANY, .max_size = MAX_TOKEN + 2, .follow_symlink = true,
	.allow_empty = true, .words = token_file_words,
};

/* The token (secret) from K8STOKEN_FILE or K8STOKEN, checked; -1 after a message. */
static int load_token(struct kt_secret *tok)
{
	const char *path = getenv("K8STOKEN_FILE");
	const char *env = getenv("K8STOKEN");
	char why[512];
	size_t n;

	if (path != NULL && path[0] != '\0') {
		enum kt_file_fault f = kt_read_private_file(path, &token_file_policy, tok, why,
		                                            sizeof(why));

		if (f != KT_FILE_OK)
			return fail(f == KT_FILE_NOMEM ? "out of memory" : why);
	} else if (env != NULL && env[0] != '\0') {
		if (strlen(env) > MAX_TOKEN + 2)
			return fail("K8STOKEN is too large for a token");
		if (kt_secret_dup(tok, env, strlen(env)) < 0)
			return fail("out of memory");
	} else {
		return fail("no token: set K8STOKEN_FILE or K8STOKEN");
	}
	/* One trailing newline (LF or CRLF), as `kubectl create token` prints on a terminal. */
	n = tok->len;
	if (n > 0 && tok->p[n - 1] == '\n') {
		tok->p[--n] = '\0';
		if (n > 0 && tok->p[n - 1] == '\r')
			tok->p[--n] = '\0';
	}
	tok->len = n;
	if (n == 0) {
		fail("no token: the token is empty (set K8STOKEN_FILE or K8STOKEN)");
		goto bad;
	}
	if (n > MAX_TOKEN) {
		fail("the token is too large");
		goto bad;
	}
	for (size_t i = 0; i < n; i++) {
		char c = tok->p[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.')) {
			fail("the token contains characters outside [A-Za-z0-9._-]; "
			     "is it really a Kubernetes token?");
			goto bad;
		}
	}
	return 0;
bad:
	kt_secret_free(tok);
	return -1;
}

/*
 * Start and length of part `want` (1-based) of tok[0..len) split into parts of at most
 * `size`; *plen = 0 past the last part. Greedy, but a boundary never lies where the prefix
 * (shorter than the token) already has the shape of a complete token: such a boundary moves
 * earlier one character at a time. Returns -1 when no valid boundary exists.
 */
static int find_part(const char *tok, size_t len, size_t size, long want, size_t *pstart,
                     size_t *plen)
{
	size_t start = 0;

	for (long part = 1;; part++) {
		size_t end;

		if (start >= len) {
			*pstart = len;
			*plen = 0;
			return 0;
		}
		if (len - start <= size) {
			end = len;
		} else {
			end = start + size;
			while (end > start && kt_token_shape(tok, end) == KT_SHAPE_COMPLETE)
				end--;
			if (end == start)
				return -1;
		}
		if (part == want) {
			*pstart = start;
			*plen = end - start;
			return 0;
		}
		start = end;
	}
}

/* Prints tok[start..start+plen) and a newline in one write (see the comment at the top). */
static int answer(const char *tok, size_t start, size_t plen)
{
	struct kt_secret out;
	int rc = 0;

	if (kt_secret_alloc(&out, plen + 2) < 0)
		return fail("out of memory");
	kt_secret_append(&out, tok + start, plen);
	kt_secret_append(&out, "\n", 1);
	if (kt_write_all(STDOUT_FILENO, out.p, out.len) != 0)
		rc = fail("cannot write the answer");
	kt_secret_free(&out);
	return rc;
}

/*
 * A prompt without "Kubernetes token": the whole token for a password prompt when the user
 * opted in and it fits in one answer; otherwise no answer (exit 1) and a message saying why.
 */
static int answer_password_prompt(const char *prompt)
{
	int setting = answer_password_setting();
	struct kt_secret tok;
	size_t limit;
	int rc;

	if (setting < 0) {
		fail(ANSWER_PASSWORD_ENV " must be 1 (answer password prompts) or 0; not answering");
		return 1;
	}
	limit = password_prompt_limit(prompt, parent_is_sudo());
	if (setting == 0 || limit == 0) {
		/* Never send the token to a prompt we do not recognise (host key question, password). */
		fprintf(stderr, PROG ": not a \"" PROMPT_MARK "\" prompt; not answering it%s\n",
		        limit != 0 ? " (a password prompt gets the token only with "
		                     ANSWER_PASSWORD_ENV "=1)" : "");
		return 1;
	}
	if (load_token(&tok) < 0)
		return 1;
	if (tok.len > limit) {
		fprintf(stderr,
		        PROG ": the token has %zu characters, but a password prompt %s passes at most "
		        "%zu in its one answer; not answering. Use the module's own \"" PROMPT_MARK
		        "\" prompt, which takes the token in parts (ssh: keyboard-interactive with "
		        "pam_k8stoken first in the stack)\n",
		        tok.len, limit == SUDO_MAX_ANSWER ? "of sudo" : "of ssh", limit);
		kt_secret_free(&tok);
		return 1;
	}
	rc = answer(tok.p, 0, tok.len) == 0 ? 0 : 1;
	kt_secret_free(&tok);
	return rc;
}

int main(int argc, char **argv)
{
	struct kt_secret tok = { 0 };
	size_t start = 0, plen = 0, size = DEFAULT_PART_SIZE;
	const char *env_size = getenv("K8STOKEN_PART_SIZE");
	long want;
	int rc = 1;

	if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		usage(stdout);
		return 0;
	}
	if (argc != 2) {
		usage(stderr);
		return 1;
	}
	want = wanted_part(argv[1]);
	if (want == 0)
		return answer_password_prompt(argv[1]);
	if (env_size != NULL && env_size[0] != '\0') {
		unsigned long long v;

		if (!kt_parse_uint(env_size, 1, MAX_PART_SIZE, &v)) {
			fail("K8STOKEN_PART_SIZE must be a number from 1 to 1023");
			return 1;
		}
		size = (size_t)v;
	}
	if (load_token(&tok) < 0)
		return 1;
	if (find_part(tok.p, tok.len, size, want, &start, &plen) != 0) {
		fail("cannot split the token into parts that pam_k8stoken accepts "
		     "(K8STOKEN_PART_SIZE too small?)");
		goto out;
	}
	if (answer(tok.p, start, plen) == 0)
		rc = 0;
out:
	kt_secret_free(&tok);
	return rc;
}
