/*
 * One reader for the files whose owner we trust: the configuration, the reviewer credential,
 * jwks_file, K8STOKEN_FILE, an enrolment bundle. A policy says what each must be (owner,
 * forbidden mode bits, size) and words each refusal the way that file's users know it.
 */
#ifndef KT_PRIVATE_FILE_H
#define KT_PRIVATE_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "secure.h"

/* What is wrong with a file, in the order the checks run (KT_FILE_OK: nothing). */
enum kt_file_fault {
	KT_FILE_OK,
	KT_FILE_MISSING,   /* open: ENOENT */
	KT_FILE_LINK,      /* open: ELOOP, a symbolic link under O_NOFOLLOW */
	KT_FILE_OPEN,      /* open: any other error */
	KT_FILE_STAT,      /* fstat failed */
	KT_FILE_TYPE,      /* not a regular file: a FIFO, a device, a directory */
	KT_FILE_OWNER,
	KT_FILE_MODE,      /* a forbidden mode bit is set */
	KT_FILE_SIZE,      /* larger than max_size, by fstat or by what could be read */
	KT_FILE_READ,
	KT_FILE_EMPTY,     /* only when the policy does not allow it */
	KT_FILE_NOMEM,     /* open gave ENOMEM, or no buffer for the contents */
	KT_FILE__COUNT
};

/* What follows "head PATH tail" in a message. */
enum kt_file_detail {
	KT_DETAIL_NONE,
	KT_DETAIL_ERRNO,   /* ": " strerror */
	KT_DETAIL_OWNER,   /* " UID, expected OWNER" */
	KT_DETAIL_MAX,     /* " MAX_SIZE bytes" */
};

/*
 * A fault's message: head (may be NULL), the path escaped, tail, detail. An entry without a
 * tail takes the words of the more general fault (an open failure's for MISSING and LINK, a
 * refused file's, KT_FILE_TYPE, for STAT, OWNER, MODE and SIZE, a read failure's for EMPTY);
 * NOMEM and an entry with nothing to fall back on give no message.
 */
struct kt_file_words {
	const char *head, *tail;
	enum kt_file_detail detail;
};

enum kt_file_owner {
	KT_OWNER_ANY,      /* a file the user names for himself: any owner */
	KT_OWNER_UID,      /* policy.owner (KT_TRUSTED_UID where the code trusts root's files) */
	KT_OWNER_EUID,     /* the caller's effective uid: the cache directory's own files */
};

struct kt_file_policy {
	enum kt_file_owner owner_rule;
	uid_t owner;                          /* with KT_OWNER_UID */
	mode_t forbidden;                     /* 022: not writable by others; 077: private */
	size_t max_size;
	bool follow_symlink;                  /* only for a path the user chose (K8STOKEN_FILE) */
	bool allow_empty;
	const struct kt_file_words *words;    /* KT_FILE__COUNT entries, or NULL: no messages */
};

/*
 * Whether st (of an open file: fstat, never a path) passes the policy's type, owner, mode
 * and size checks. Shared with the cache, whose files are opened in its directory with
 * flags of their own (kt_cache_open_private).
 */
enum kt_file_fault kt_file_check(const struct stat *st, const struct kt_file_policy *policy);

/*
 * Opens path (relative to dirfd, AT_FDCWD for none) without waiting on a FIFO and without
 * following a symbolic link unless the policy allows it, checks it with kt_file_check and
 * reads it whole into *out: a secret of max_size + 2 bytes, NUL-terminated, zeroed when
 * freed. out NULL: only the checks (a key file that libcurl reads itself). st (may be NULL)
 * receives the file's status. On a fault *out is empty and err (may be NULL) holds the
 * policy's words for it.
 */
enum kt_file_fault kt_read_private_file_at(int dirfd, const char *path,
                                           const struct kt_file_policy *policy,
                                           struct kt_secret *out, struct stat *st,
                                           char *err, size_t errlen);
enum kt_file_fault kt_read_private_file(const char *path, const struct kt_file_policy *policy,
                                        struct kt_secret *out, char *err, size_t errlen);

#endif
