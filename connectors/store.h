/*
 * store.h - the shared snapshot store: where shard snapshots go so that
 * another instance can load them (docs/state.md "Shared store").
 *
 * A small blocking API over two back ends, `file:///abs/dir` (a directory
 * every instance reaches: NFS, EFS, CephFS, a local disk) and
 * `s3://bucket/prefix` (any S3-compatible object store, through libcurl).
 * Every call blocks until done or timed out, so the run calls it from
 * libuv's thread pool (uv_queue_work), never from the loop.  Calls are
 * thread-safe: a struct store is read-only after store_open() except for
 * its atomic counters, and every S3 call uses its own curl handle.
 *
 * Objects are immutable: a name is written once (the run never reuses
 * one), so a reader never sees a half-written object under its name.
 *
 * Errors: every call returns 0 or a negative errno and writes a reason to
 * err (errsize bytes, always terminated):
 *   -EINVAL        a bad URL or object name (nothing was tried)
 *   -ENOENT        store_get(): the object does not exist
 *   -EACCES        the store refused the credentials or the access
 *   -ECONNREFUSED, -EHOSTUNREACH, -ETIMEDOUT
 *                  the S3 endpoint could not be reached, or was too slow
 *                  (connect 5 s; less than 1 KB/s for 15 s; see store.c)
 *   -EIO           any other failure of the store (an HTTP 5xx, a garbled
 *                  response); the reason names the HTTP status and the S3
 *                  error code and message
 *   -ENOMEM        out of memory
 *   other          a local file system error (-ENOSPC, ...)
 */
#ifndef SLUICE_STORE_H
#define SLUICE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "../config/compiler.h"
#include "../config/store_url.h"

struct store;

/* url: "file:///abs/dir" or "s3://bucket/prefix" (prefix may be empty).
 * s3: credentials, region and endpoint from AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN (optional), AWS_REGION
 * (default us-east-1), AWS_ENDPOINT_URL (default
 * https://s3.<region>.amazonaws.com), read once here.  Requests use
 * path-style addressing, <endpoint>/<bucket>/<prefix>/<name>, so local
 * S3-compatible servers work.  Nothing is contacted yet.  Returns 0 with
 * *out (free with store_free) or a negative errno with the reason in err. */
int store_open(const char *url, struct store **out, char *err, size_t errsize) SL_MUST_USE;
void store_free(struct store *st);

/* The URL as given (it holds no secrets), for logs. */
const char *store_url(const struct store *st);

/* Copies the local file at path to the object name (store_url.h's rules).
 * file://: <dir>/<name>.tmp-<random>, fsync, rename, fsync of the
 * directory; missing directories are created.  s3://: one PUT. */
int store_put(struct store *st, const char *name, const char *path, char *err, size_t errsize)
    SL_MUST_USE;

/* Downloads the object to path: written to <path>.tmp, fsynced, renamed
 * (a crash never leaves a partial file at path).  -ENOENT when absent. */
int store_get(struct store *st, const char *name, const char *path, char *err, size_t errsize)
    SL_MUST_USE;

/* Deletes the object; an absent one is 0. */
int store_delete(struct store *st, const char *name, char *err, size_t errsize) SL_MUST_USE;

/* The names of the objects whose name starts with prefix ("" for all;
 * "job/p3/" for one shard), sorted bytewise.  Objects whose names break
 * store_url.h's rules (put there by something else) and file:// uploads
 * still in progress are not listed.  On 0, *names is an array of *n
 * strings (NULL when *n is 0): free with store_names_free(). */
int store_list(struct store *st, const char *prefix, char ***names, size_t *n, char *err,
               size_t errsize) SL_MUST_USE;
void store_names_free(char **names, size_t n);

/* What the store did since store_open: bytes and calls that succeeded, and
 * calls that failed (a store_get() of an absent object is no error). */
struct store_stats {
    uint64_t put_bytes, get_bytes, puts, gets, deletes, errors;
};
void store_get_stats(const struct store *st, struct store_stats *out);

#endif
