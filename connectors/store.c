/*
 * store.c - the shared snapshot store (store.h): file:// and s3://.
 *
 * Why it is built this way:
 *
 * - Blocking and thread-safe, not a loop citizen.  Uploads of shard
 *   snapshots are rare (one per shard per checkpoint) and large, so the run
 *   hands them to libuv's thread pool; a blocking call with hard timeouts
 *   is the simplest thing that can never stall the loop.  A struct store is
 *   read-only after store_open() except for its counters (C11 atomics), and
 *   each S3 call uses its own curl easy handle, so calls may run on any
 *   number of threads at once.  curl_global_init() runs once, through
 *   pthread_once, the first time an s3:// store is opened.
 *
 * - file:// is as durable as a local checkpoint: the bytes go to
 *   <name>.tmp-<random>, are fsynced, renamed onto the name and the
 *   directory is fsynced, so after store_put() returns the object survives
 *   a power cut, and a crash half-way leaves only a .tmp- file that no
 *   reader ever opens (store_list() skips them).
 *
 * - s3:// is plain HTTP with libcurl's own SigV4 signer
 *   (CURLOPT_AWS_SIGV4 "aws:amz:<region>:s3").  The payload is sent as
 *   UNSIGNED-PAYLOAD (x-amz-content-sha256), which S3 accepts: hashing a
 *   large snapshot twice (once to sign, once to send) would double the
 *   upload's cost, and the snapshot's own XXH64, carried in the commit
 *   metadata, is verified on every restore anyway.  Query strings are
 *   written already in SigV4's canonical form (parameters sorted, values
 *   percent-encoded), because libcurl 7.88 signs the query as written.
 *   Path-style addressing (<endpoint>/<bucket>/<key>) keeps local
 *   S3-compatible servers working.
 *
 * - Every request has a connect timeout (5 s), a floor on its speed (less
 *   than 1 KB/s for 15 s aborts it) and a total timeout, so a dead or hung
 *   server costs a bounded time, after which the caller gets a clear
 *   error and tries again at its next checkpoint.  Responses are treated
 *   as hostile: error bodies and listings are read into bounded buffers
 *   and scanned for the few tags we need; anything else is "unexpected".
 */
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store.h"

/* ---- types --------------------------------------------------------------- */

#define CONNECT_TIMEOUT_MS 5000L
#define LOW_SPEED_BYTES 1024L          /* below this many bytes/s ... */
#define LOW_SPEED_SECONDS 15L          /* ... for this long aborts a request */
#define SMALL_TIMEOUT_S 60L            /* DELETE, one page of a listing */
#define GET_TIMEOUT_S 900L             /* a download, whatever its size */
#define PUT_TIMEOUT_S 60L              /* plus one second per MiB uploaded */
#define ERROR_BODY_MAX (64 * 1024)     /* what we keep of an error response */
#define LIST_BODY_MAX (16 * 1024 * 1024)  /* one page of a listing (1000 keys: ~300 KB) */
#define LIST_PAGES_MAX 100000          /* a server that never stops paging is broken */
#define COPY_CHUNK (256 * 1024)

struct store {
    struct store_url u;
    char *url;                          /* as given */
    /* s3 only */
    char *endpoint;                     /* "http(s)://host[:port][/path]", no trailing '/' */
    char *sigv4;                        /* "aws:amz:<region>:s3" */
    char *key_id, *secret;
    char *token_hdr;                    /* "x-amz-security-token: ..." or NULL */
    _Atomic uint64_t put_bytes, get_bytes, puts, gets, deletes, errors;
};

/* A growing buffer for response bodies, bounded by max. */
struct body {
    char *p;
    size_t len, cap, max;
    int overflow;
};

/* One S3 request and what came back. */
struct req {
    const char *method;                 /* for messages: GET, PUT, DELETE */
    const char *what;                   /* the key or listing, for messages */
    int in_fd;                          /* PUT: the file sent, else -1 */
    int out_fd;                         /* GET: where a 2xx body goes, else -1 */
    uint64_t out_bytes;
    int out_errno;                      /* a failed write to out_fd */
    struct body body;                   /* any other body */
    long status;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;

/* ---- helpers ------------------------------------------------------------- */

/* errstr() may share its buffer between threads; this one is per thread
 * (one use per message). */
static const char *errstr(int e)
{
    static _Thread_local char buf[128];
    if (strerror_r(e, buf, sizeof(buf)) != 0)
        snprintf(buf, sizeof(buf), "error %d", e);
    return buf;
}

static void curl_init_once(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static char *xstrdup(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

/* "<dir>/<name>" into out; -ENAMETOOLONG when it does not fit. */
static int join(char *out, size_t size, const char *dir, const char *name)
{
    int n = snprintf(out, size, "%s%s%s", dir, strcmp(dir, "/") == 0 ? "" : "/", name);
    return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* Creates every missing directory of path up to its last '/'. */
static int mkdirs_for(const char *path)
{
    char tmp[PATH_MAX];
    size_t n = strlen(path);
    if (n >= sizeof(tmp))
        return -ENAMETOOLONG;
    memcpy(tmp, path, n + 1);
    for (char *p = tmp + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    return 0;
}

/* fsyncs the directory holding path; best effort (docs/internals.md). */
static void fsync_parent(const char *path)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        return;
    if (slash == dir)
        slash[1] = '\0';
    else
        *slash = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)!fsync(fd);
        close(fd);
    }
}

/* Copies in to out from their current positions; *bytes gets the count. */
static int copy_fd(int in, int out, uint64_t *bytes)
{
    char *buf = malloc(COPY_CHUNK);
    if (buf == NULL)
        return -ENOMEM;
    int rc = 0;
    *bytes = 0;
    for (;;) {
        ssize_t r = read(in, buf, COPY_CHUNK);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = -errno;
            break;
        }
        if (r == 0)
            break;
        for (ssize_t off = 0; off < r;) {
            ssize_t w = write(out, buf + off, (size_t)(r - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                rc = -errno;
                goto done;
            }
            off += w;
        }
        *bytes += (uint64_t)r;
    }
done:
    free(buf);
    return rc;
}

/* Writes a fresh, exclusive temporary file next to final and returns its
 * fd, its path in tmp. */
static int open_tmp(const char *final, char *tmp, size_t size)
{
    for (int tries = 0; tries < 8; tries++) {
        uint64_t r;
        if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
            r = ((uint64_t)getpid() << 32) ^ (uint64_t)time(NULL) ^ ((uint64_t)tries << 48);
        int n = snprintf(tmp, size, "%s.tmp-%016llx", final, (unsigned long long)r);
        if (n < 0 || (size_t)n >= size)
            return -ENAMETOOLONG;
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd >= 0 || errno != EEXIST)
            return fd >= 0 ? fd : -errno;
    }
    return -EEXIST;
}

/* Copies src to dst through dst's temporary name: fsync, rename, fsync of
 * the directory.  tmpname: 1 for "<dst>.tmp-<random>", 0 for "<dst>.tmp".
 * The reason goes to err. */
static int copy_durably(const char *src, const char *dst, int random_tmp, uint64_t *bytes,
                        char *err, size_t errsize)
{
    char tmp[PATH_MAX];
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        int e = errno;
        snprintf(err, errsize, "%s: %s", src, errstr(e));
        return -e;
    }
    int out;
    if (random_tmp) {
        out = open_tmp(dst, tmp, sizeof(tmp));
    } else if (snprintf(tmp, sizeof(tmp), "%s.tmp", dst) >= (int)sizeof(tmp)) {
        out = -ENAMETOOLONG;
    } else {
        out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (out < 0)
            out = -errno;
    }
    if (out < 0) {
        snprintf(err, errsize, "%s: cannot create a temporary file: %s", dst, errstr(-out));
        close(in);
        return out;
    }
    int rc = copy_fd(in, out, bytes);
    const char *step = "copy";
    if (rc == 0 && fsync(out) < 0) {
        rc = -errno;
        step = "fsync";
    }
    if (close(out) < 0 && rc == 0) {
        rc = -errno;
        step = "close";
    }
    if (rc == 0 && rename(tmp, dst) < 0) {
        rc = -errno;
        step = "rename";
    }
    close(in);
    if (rc < 0) {
        unlink(tmp);
        snprintf(err, errsize, "%s -> %s: %s failed: %s", src, dst, step, errstr(-rc));
        return rc;
    }
    fsync_parent(dst);
    return 0;
}

/* ---- file:// --------------------------------------------------------------- */

static int file_put(struct store *st, const char *name, const char *path, uint64_t *bytes,
                    char *err, size_t errsize)
{
    char dst[PATH_MAX];
    int rc = join(dst, sizeof(dst), st->u.dir, name);
    if (rc == 0)
        rc = mkdirs_for(dst);
    if (rc < 0) {
        snprintf(err, errsize, "%s/%s: cannot create its directories: %s", st->u.dir, name,
                 errstr(-rc));
        return rc;
    }
    return copy_durably(path, dst, 1, bytes, err, errsize);
}

static int file_get(struct store *st, const char *name, const char *path, uint64_t *bytes,
                    char *err, size_t errsize)
{
    char src[PATH_MAX];
    struct stat sb;
    if (join(src, sizeof(src), st->u.dir, name) < 0) {
        snprintf(err, errsize, "%s/%s: path too long", st->u.dir, name);
        return -ENAMETOOLONG;
    }
    int e = stat(src, &sb) < 0 ? errno : S_ISREG(sb.st_mode) ? 0 : ENOENT;
    if (e != 0) {
        snprintf(err, errsize, "%s: %s", src, e == ENOENT ? "no such object" : errstr(e));
        return -e;
    }
    return copy_durably(src, path, 0, bytes, err, errsize);
}

static int file_delete(struct store *st, const char *name, char *err, size_t errsize)
{
    char p[PATH_MAX];
    if (join(p, sizeof(p), st->u.dir, name) < 0) {
        snprintf(err, errsize, "%s/%s: path too long", st->u.dir, name);
        return -ENAMETOOLONG;
    }
    if (unlink(p) < 0 && errno != ENOENT) {
        int e = errno;
        snprintf(err, errsize, "%s: cannot delete: %s", p, errstr(e));
        return -e;
    }
    fsync_parent(p);
    return 0;
}

/* A list of names being collected. */
struct names {
    char **v;
    size_t n, cap;
};

static int names_add(struct names *l, const char *s, size_t len)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **v = realloc(l->v, cap * sizeof(*v));
        if (v == NULL)
            return -ENOMEM;
        l->v = v;
        l->cap = cap;
    }
    char *c = malloc(len + 1);
    if (c == NULL)
        return -ENOMEM;
    memcpy(c, s, len);
    c[len] = '\0';
    l->v[l->n++] = c;
    return 0;
}

/* A name ending in ".tmp-" and 16 hex digits: an upload in progress. */
static int is_tmp(const char *s)
{
    size_t n = strlen(s);
    if (n < 21 || memcmp(s + n - 21, ".tmp-", 5) != 0)
        return 0;
    for (size_t i = n - 16; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

/* Adds the names under rel (a directory relative to the store, "" for its
 * root) that start with prefix, recursing into directories. */
static int file_walk(struct store *st, const char *rel, const char *prefix, struct names *l,
                     int depth, char *err, size_t errsize)
{
    char dir[PATH_MAX];
    if (depth > 64)
        return 0;                       /* deeper than any name can be */
    if (rel[0] == '\0')
        snprintf(dir, sizeof(dir), "%s", st->u.dir);
    else if (join(dir, sizeof(dir), st->u.dir, rel) < 0)
        return 0;
    DIR *d = opendir(dir);
    if (d == NULL) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 0;
        int e = errno;
        snprintf(err, errsize, "%s: %s", dir, errstr(e));
        return -e;
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char name[PATH_MAX], why[128];
        int n = snprintf(name, sizeof(name), "%s%s%s", rel, rel[0] ? "/" : "", e->d_name);
        if (n < 0 || (size_t)n >= sizeof(name))
            continue;
        size_t pl = strlen(prefix);
        /* a directory matters if the prefix may continue below it */
        int is_dir = e->d_type == DT_DIR;
        if (e->d_type == DT_UNKNOWN || e->d_type == DT_LNK) {
            struct stat sb;
            char full[PATH_MAX];
            is_dir = join(full, sizeof(full), st->u.dir, name) == 0 && stat(full, &sb) == 0 &&
                     S_ISDIR(sb.st_mode);
        }
        if (is_dir) {
            size_t m = (size_t)n < pl ? (size_t)n : pl;
            if (strncmp(name, prefix, m) == 0)
                rc = file_walk(st, name, prefix, l, depth + 1, err, errsize);
        } else if (strncmp(name, prefix, pl) == 0 && !is_tmp(name) &&
                   store_url_name_check(name, why, sizeof(why)) == 0) {
            rc = names_add(l, name, (size_t)n);
            if (rc < 0)
                snprintf(err, errsize, "out of memory listing %s", st->u.dir);
        }
    }
    closedir(d);
    return rc;
}

/* ---- s3:// ----------------------------------------------------------------- */

static int body_add(struct body *b, const char *p, size_t n)
{
    if (b->len + n + 1 > b->max) {
        b->overflow = 1;
        n = b->max > b->len + 1 ? b->max - b->len - 1 : 0;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *q = realloc(b->p, cap);
        if (q == NULL)
            return -ENOMEM;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

struct cb_ctx {
    CURL *h;
    struct req *r;
};

static size_t on_write(char *p, size_t size, size_t nmemb, void *ud)
{
    struct cb_ctx *c = ud;
    struct req *r = c->r;
    size_t n = size * nmemb;
    long status = 0;
    curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &status);
    if (r->out_fd >= 0 && status / 100 == 2) {
        for (size_t off = 0; off < n;) {
            ssize_t w = write(r->out_fd, p + off, n - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                r->out_errno = errno;
                return 0;               /* aborts the transfer */
            }
            off += (size_t)w;
        }
        r->out_bytes += n;
        return n;
    }
    if (body_add(&r->body, p, n) < 0) {
        r->out_errno = ENOMEM;
        return 0;
    }
    /* a listing that outgrows its bound stops; an error body is just cut */
    return r->body.overflow && r->out_fd < 0 && status / 100 == 2 ? 0 : n;
}

static size_t on_read(char *p, size_t size, size_t nmemb, void *ud)
{
    struct req *r = ud;
    for (;;) {
        ssize_t n = read(r->in_fd, p, size * nmemb);
        if (n < 0 && errno == EINTR)
            continue;
        return n < 0 ? CURL_READFUNC_ABORT : (size_t)n;
    }
}

static int on_seek(void *ud, curl_off_t off, int origin)
{
    struct req *r = ud;
    return lseek(r->in_fd, (off_t)off, origin) < 0 ? CURL_SEEKFUNC_FAIL : CURL_SEEKFUNC_OK;
}

/* The text of the first <tag>...</tag> in s, entities decoded, anything
 * unprintable as '?', cut to size.  0 when found, -ENOENT when not. */
static int xml_tag(const char *s, const char *tag, char *out, size_t size)
{
    char open[64], close[64];
    snprintf(open, sizeof(open), "<%s>", tag);
    snprintf(close, sizeof(close), "</%s>", tag);
    const char *a = s != NULL ? strstr(s, open) : NULL;
    if (a == NULL)
        return -ENOENT;
    a += strlen(open);
    const char *b = strstr(a, close);
    if (b == NULL)
        return -ENOENT;
    static const struct { const char *ent; char c; } ents[] = {
        { "&amp;", '&' }, { "&lt;", '<' }, { "&gt;", '>' }, { "&quot;", '"' }, { "&apos;", '\'' },
    };
    size_t n = 0;
    while (a < b && n + 1 < size) {
        char c = *a++;
        if (c == '&') {
            c = '?';
            for (size_t i = 0; i < sizeof(ents) / sizeof(ents[0]); i++) {
                size_t el = strlen(ents[i].ent);
                if ((size_t)(b - (a - 1)) >= el && strncmp(a - 1, ents[i].ent, el) == 0) {
                    c = ents[i].c;
                    a += el - 1;
                    break;
                }
            }
        }
        out[n++] = (unsigned char)c >= 0x20 && (unsigned char)c < 0x7f ? c : '?';
    }
    out[n] = '\0';
    return 0;
}

/* Appends s to out percent-encoded as SigV4 wants (all but A-Za-z0-9-_.~). */
static size_t pct_encode(char *out, size_t size, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(out);
    for (; *s != '\0' && n + 4 < size; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            out[n++] = (char)c;
        } else {
            out[n++] = '%';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 15];
        }
    }
    out[n] = '\0';
    return *s == '\0' ? n : 0;
}

/* "/<bucket>/<prefix>/<name>", the object's path on the endpoint. */
static int s3_path(const struct store *st, const char *method, const char *name, char *out,
                   size_t size, char *err, size_t errsize)
{
    int n = snprintf(out, size, "/%s/%s%s%s", st->u.bucket, st->u.prefix,
                     st->u.prefix[0] ? "/" : "", name);
    if (n >= 0 && (size_t)n < size)
        return 0;
    snprintf(err, errsize, "s3 %s %s: key too long", method, name);
    return -ENAMETOOLONG;
}

static int map_curl(CURLcode c)
{
    switch (c) {
    case CURLE_COULDNT_CONNECT:
        return -ECONNREFUSED;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return -EHOSTUNREACH;
    case CURLE_OPERATION_TIMEDOUT:
        return -ETIMEDOUT;
    case CURLE_OUT_OF_MEMORY:
        return -ENOMEM;
    default:
        return -EIO;
    }
}

/* Runs one request: url (endpoint-relative, starting with '/'), r's
 * method and files, timeout in seconds.  Returns 0 when a response came
 * (r->status says which), or the transport's error with the reason in
 * err. */
static int s3_perform(struct store *st, const char *path, struct req *r, long timeout_s,
                      curl_off_t upload_len, char *err, size_t errsize)
{
    char url[PATH_MAX + 256], ebuf[CURL_ERROR_SIZE] = "";
    if ((size_t)snprintf(url, sizeof(url), "%s%s", st->endpoint, path) >= sizeof(url)) {
        snprintf(err, errsize, "s3 %s %s: URL too long", r->method, r->what);
        return -ENAMETOOLONG;
    }
    CURL *h = curl_easy_init();
    if (h == NULL) {
        snprintf(err, errsize, "s3 %s %s: out of memory", r->method, r->what);
        return -ENOMEM;
    }
    struct curl_slist *hdrs = NULL, *t;
    t = curl_slist_append(hdrs, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
    if (t != NULL)
        hdrs = t;
    if (t != NULL && st->token_hdr != NULL) {
        t = curl_slist_append(hdrs, st->token_hdr);
        if (t != NULL)
            hdrs = t;
    }
    if (t == NULL) {
        curl_slist_free_all(hdrs);
        curl_easy_cleanup(h);
        snprintf(err, errsize, "s3 %s %s: out of memory", r->method, r->what);
        return -ENOMEM;
    }
    struct cb_ctx cb = { h, r };
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "sluice");
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, ebuf);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, LOW_SPEED_BYTES);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, LOW_SPEED_SECONDS);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, timeout_s);
    curl_easy_setopt(h, CURLOPT_AWS_SIGV4, st->sigv4);
    curl_easy_setopt(h, CURLOPT_USERNAME, st->key_id);
    curl_easy_setopt(h, CURLOPT_PASSWORD, st->secret);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &cb);
    if (r->in_fd >= 0) {
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(h, CURLOPT_READDATA, r);
        curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
        curl_easy_setopt(h, CURLOPT_SEEKDATA, r);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, upload_len);
    } else if (strcmp(r->method, "GET") != 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, r->method);
    }
    CURLcode c = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    if (c == CURLE_OK)
        return 0;
    if (r->out_errno != 0) {
        snprintf(err, errsize, "s3 %s %s: %s", r->method, r->what,
                 r->out_errno == ENOMEM ? "out of memory" : errstr(r->out_errno));
        return -r->out_errno;
    }
    if (c == CURLE_WRITE_ERROR && r->body.overflow) {
        snprintf(err, errsize, "s3 %s %s: response larger than %d bytes", r->method, r->what,
                 LIST_BODY_MAX);
        return -EIO;
    }
    snprintf(err, errsize, "s3 %s %s: %s (%s)", r->method, r->what,
             ebuf[0] ? ebuf : curl_easy_strerror(c), st->endpoint);
    return map_curl(c);
}

/* The start of a body that is not what we expected, safe to log. */
static void snippet(const struct body *b, char *out, size_t size)
{
    size_t n = 0;
    for (size_t i = 0; b->p != NULL && i < b->len && n + 1 < size && n < 80; i++) {
        unsigned char c = (unsigned char)b->p[i];
        out[n++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    out[n] = '\0';
}

/* 0 for a 2xx; otherwise the error for status and body, with its reason. */
static int s3_status(const struct req *r, int absent_ok, char *err, size_t errsize)
{
    if (r->status / 100 == 2)
        return 0;
    char code[128] = "", msg[256] = "";
    if (xml_tag(r->body.p, "Code", code, sizeof(code)) < 0)
        code[0] = '\0';
    if (xml_tag(r->body.p, "Message", msg, sizeof(msg)) < 0)
        msg[0] = '\0';
    int rc = -EIO;
    if (r->status == 404 && (code[0] == '\0' || strcmp(code, "NoSuchKey") == 0))
        rc = -ENOENT;
    else if (r->status == 401 || r->status == 403)
        rc = -EACCES;
    if (rc == -ENOENT && absent_ok)
        return 0;
    if (code[0] == '\0') {
        /* not S3's XML: a proxy, a load balancer, something else */
        snippet(&r->body, msg, sizeof(msg));
        snprintf(err, errsize, "s3 %s %s: HTTP %ld without an S3 error (%s)", r->method,
                 r->what, r->status, msg[0] ? msg : "empty body");
        return rc;
    }
    snprintf(err, errsize, "s3 %s %s: HTTP %ld %s%s%s", r->method, r->what, r->status, code,
             msg[0] ? ": " : "", msg);
    return rc;
}

static struct req req_new(const char *method, const char *what, size_t body_max)
{
    return (struct req){ .method = method, .what = what, .in_fd = -1, .out_fd = -1,
                         .body = { .max = body_max } };
}

static int s3_put(struct store *st, const char *name, const char *path, uint64_t *bytes,
                  char *err, size_t errsize)
{
    char p[1100];
    if (s3_path(st, "PUT", name, p, sizeof(p), err, errsize) < 0)
        return -ENAMETOOLONG;
    struct req r = req_new("PUT", p + 1, ERROR_BODY_MAX);
    struct stat sb;
    r.in_fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r.in_fd < 0 || fstat(r.in_fd, &sb) < 0) {
        int e = errno;
        snprintf(err, errsize, "%s: %s", path, errstr(e));
        if (r.in_fd >= 0)
            close(r.in_fd);
        return -e;
    }
    long timeout = PUT_TIMEOUT_S + (long)(sb.st_size >> 20);
    int rc = s3_perform(st, p, &r, timeout, (curl_off_t)sb.st_size, err, errsize);
    if (rc == 0)
        rc = s3_status(&r, 0, err, errsize);
    close(r.in_fd);
    free(r.body.p);
    *bytes = (uint64_t)sb.st_size;
    return rc;
}

static int s3_get(struct store *st, const char *name, const char *path, uint64_t *bytes,
                  char *err, size_t errsize)
{
    char p[1100], tmp[PATH_MAX];
    if (s3_path(st, "GET", name, p, sizeof(p), err, errsize) < 0)
        return -ENAMETOOLONG;
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp)) {
        snprintf(err, errsize, "%s: path too long", path);
        return -ENAMETOOLONG;
    }
    struct req r = req_new("GET", p + 1, ERROR_BODY_MAX);
    r.out_fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (r.out_fd < 0) {
        int e = errno;
        snprintf(err, errsize, "%s: %s", tmp, errstr(e));
        return -e;
    }
    int rc = s3_perform(st, p, &r, GET_TIMEOUT_S, 0, err, errsize);
    if (rc == 0)
        rc = s3_status(&r, 0, err, errsize);
    if (rc == 0 && fsync(r.out_fd) < 0) {
        rc = -errno;
        snprintf(err, errsize, "%s: fsync: %s", tmp, errstr(-rc));
    }
    if (close(r.out_fd) < 0 && rc == 0) {
        rc = -errno;
        snprintf(err, errsize, "%s: close: %s", tmp, errstr(-rc));
    }
    if (rc == 0 && rename(tmp, path) < 0) {
        rc = -errno;
        snprintf(err, errsize, "%s -> %s: rename: %s", tmp, path, errstr(-rc));
    }
    if (rc < 0)
        unlink(tmp);
    else
        fsync_parent(path);
    free(r.body.p);
    *bytes = r.out_bytes;
    return rc;
}

static int s3_delete(struct store *st, const char *name, char *err, size_t errsize)
{
    char p[1100];
    if (s3_path(st, "DELETE", name, p, sizeof(p), err, errsize) < 0)
        return -ENAMETOOLONG;
    struct req r = req_new("DELETE", p + 1, ERROR_BODY_MAX);
    int rc = s3_perform(st, p, &r, SMALL_TIMEOUT_S, 0, err, errsize);
    if (rc == 0)
        rc = s3_status(&r, 1, err, errsize);
    free(r.body.p);
    return rc;
}

/* Adds every <Key> of one ListObjectsV2 page that is a name under prefix. */
static int s3_list_page(struct store *st, const char *body, const char *prefix, struct names *l)
{
    size_t sp = strlen(st->u.prefix), pl = strlen(prefix);
    const char *s = body;
    while ((s = strstr(s, "<Key>")) != NULL) {
        char key[1100], why[128];
        if (xml_tag(s, "Key", key, sizeof(key)) < 0)
            break;
        s += 5;
        const char *name = key;
        if (sp > 0) {
            if (strncmp(key, st->u.prefix, sp) != 0 || key[sp] != '/')
                continue;
            name = key + sp + 1;
        }
        if (strncmp(name, prefix, pl) != 0 || store_url_name_check(name, why, sizeof(why)) < 0)
            continue;
        if (names_add(l, name, strlen(name)) < 0)
            return -ENOMEM;
    }
    return 0;
}

static int s3_list(struct store *st, const char *prefix, struct names *l, char *err,
                   size_t errsize)
{
    char full[1100], token[1100] = "", what[1200];
    if ((size_t)snprintf(full, sizeof(full), "%s%s%s", st->u.prefix,
                         st->u.prefix[0] ? "/" : "", prefix) >= sizeof(full)) {
        snprintf(err, errsize, "s3 list %s: prefix too long", prefix);
        return -ENAMETOOLONG;
    }
    snprintf(what, sizeof(what), "%s?prefix=%s", st->u.bucket, full);
    for (int page = 0; page < LIST_PAGES_MAX; page++) {
        /* SigV4's canonical query: parameters sorted, values encoded */
        char q[4096];
        snprintf(q, sizeof(q), "/%s?", st->u.bucket);
        if (token[0] != '\0') {
            strcat(q, "continuation-token=");
            if (pct_encode(q, sizeof(q), token) == 0)
                goto too_long;
            strcat(q, "&");
        }
        strcat(q, "list-type=2&prefix=");
        if (pct_encode(q, sizeof(q), full) == 0)
            goto too_long;
        struct req r = req_new("GET", what, LIST_BODY_MAX);
        int rc = s3_perform(st, q, &r, SMALL_TIMEOUT_S, 0, err, errsize);
        if (rc == 0)
            rc = s3_status(&r, 0, err, errsize);
        if (rc == 0 && (r.body.p == NULL || strstr(r.body.p, "<ListBucketResult") == NULL)) {
            char start[96];
            snippet(&r.body, start, sizeof(start));
            snprintf(err, errsize, "s3 GET %s: HTTP %ld but not a listing (%s)", what,
                     r.status, start[0] ? start : "empty body");
            rc = -EIO;
        }
        if (rc == 0 && s3_list_page(st, r.body.p, prefix, l) < 0) {
            snprintf(err, errsize, "s3 GET %s: out of memory", what);
            rc = -ENOMEM;
        }
        char trunc[16] = "";
        if (rc == 0 && xml_tag(r.body.p, "IsTruncated", trunc, sizeof(trunc)) == 0 &&
            strcmp(trunc, "true") == 0) {
            char next[1100];
            if (xml_tag(r.body.p, "NextContinuationToken", next, sizeof(next)) < 0 ||
                next[0] == '\0' || strcmp(next, token) == 0) {
                snprintf(err, errsize, "s3 GET %s: truncated listing without a new "
                         "NextContinuationToken", what);
                rc = -EIO;
            } else {
                snprintf(token, sizeof(token), "%s", next);
                free(r.body.p);
                continue;
            }
        }
        free(r.body.p);
        return rc;
    }
    snprintf(err, errsize, "s3 GET %s: more than %d pages", what, LIST_PAGES_MAX);
    return -EIO;
too_long:
    snprintf(err, errsize, "s3 GET %s: query too long", what);
    return -ENAMETOOLONG;
}

static int s3_open(struct store *st, char *err, size_t errsize)
{
    const char *id = getenv("AWS_ACCESS_KEY_ID"), *secret = getenv("AWS_SECRET_ACCESS_KEY");
    const char *token = getenv("AWS_SESSION_TOKEN"), *region = getenv("AWS_REGION");
    const char *endpoint = getenv("AWS_ENDPOINT_URL");
    if (id == NULL || id[0] == '\0' || secret == NULL || secret[0] == '\0') {
        snprintf(err, errsize, "%s: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set",
                 st->url);
        return -EINVAL;
    }
    if (region == NULL || region[0] == '\0')
        region = "us-east-1";
    for (const char *c = region; *c != '\0'; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-')) {
            snprintf(err, errsize, "AWS_REGION \"%.40s\": expected a region like eu-west-1",
                     region);
            return -EINVAL;
        }
    pthread_once(&curl_once, curl_init_once);
    if (curl_init_rc != CURLE_OK) {
        snprintf(err, errsize, "libcurl: %s", curl_easy_strerror(curl_init_rc));
        return -EIO;
    }
    char ep[512];
    if (endpoint != NULL && endpoint[0] != '\0') {
        size_t n = strlen(endpoint);
        while (n > 0 && endpoint[n - 1] == '/')
            n--;
        if ((strncmp(endpoint, "http://", 7) != 0 && strncmp(endpoint, "https://", 8) != 0) ||
            n >= sizeof(ep) || strpbrk(endpoint, " ?#\r\n\t") != NULL) {
            snprintf(err, errsize, "AWS_ENDPOINT_URL \"%.80s\": expected http(s)://host[:port]",
                     endpoint);
            return -EINVAL;
        }
        memcpy(ep, endpoint, n);
        ep[n] = '\0';
    } else {
        snprintf(ep, sizeof(ep), "https://s3.%s.amazonaws.com", region);
    }
    char sig[128];
    snprintf(sig, sizeof(sig), "aws:amz:%s:s3", region);
    st->endpoint = strdup(ep);
    st->sigv4 = strdup(sig);
    st->key_id = strdup(id);
    st->secret = strdup(secret);
    if (token != NULL && token[0] != '\0') {
        size_t n = strlen(token) + 32;
        st->token_hdr = malloc(n);
        if (st->token_hdr != NULL)
            snprintf(st->token_hdr, n, "x-amz-security-token: %s", token);
    }
    if (st->endpoint == NULL || st->sigv4 == NULL || st->key_id == NULL || st->secret == NULL ||
        (token != NULL && token[0] != '\0' && st->token_hdr == NULL)) {
        snprintf(err, errsize, "out of memory");
        return -ENOMEM;
    }
    return 0;
}

/* ---- API ------------------------------------------------------------------- */

/* What differs between file:// and s3:// (listing differs in its setup
 * too, and is called directly). */
struct backend {
    int (*put)(struct store *st, const char *name, const char *path, uint64_t *bytes,
               char *err, size_t errsize);
    int (*get)(struct store *st, const char *name, const char *path, uint64_t *bytes,
               char *err, size_t errsize);
    int (*del)(struct store *st, const char *name, char *err, size_t errsize);
};

static const struct backend file_backend = { file_put, file_get, file_delete };
static const struct backend s3_backend = { s3_put, s3_get, s3_delete };

int store_open(const char *url, struct store **out, char *err, size_t errsize)
{
    *out = NULL;
    struct store *st = calloc(1, sizeof(*st));
    if (st == NULL) {
        snprintf(err, errsize, "out of memory");
        return -ENOMEM;
    }
    int rc = store_url_parse(url, &st->u, err, errsize);
    if (rc == 0) {
        st->url = xstrdup(url);
        if (st->url == NULL) {
            snprintf(err, errsize, "out of memory");
            rc = -ENOMEM;
        }
    }
    if (rc == 0 && st->u.kind == STORE_S3)
        rc = s3_open(st, err, errsize);
    if (rc < 0) {
        store_free(st);
        return rc;
    }
    *out = st;
    return 0;
}

void store_free(struct store *st)
{
    if (st == NULL)
        return;
    if (st->secret != NULL)
        explicit_bzero(st->secret, strlen(st->secret));
    if (st->token_hdr != NULL)
        explicit_bzero(st->token_hdr, strlen(st->token_hdr));
    free(st->url);
    free(st->endpoint);
    free(st->sigv4);
    free(st->key_id);
    free(st->secret);
    free(st->token_hdr);
    free(st);
}

const char *store_url(const struct store *st)
{
    return st->url;
}

static int bad_name(struct store *st, const char *name, char *err, size_t errsize)
{
    char why[256];
    if (store_url_name_check(name, why, sizeof(why)) == 0)
        return 0;
    snprintf(err, errsize, "%s: %s", st->url, why);
    atomic_fetch_add(&st->errors, 1);
    return -EINVAL;
}

/* A put or a get through the store's back end, counted: calls and bytes
 * on success, errors on failure (a get of an absent object is none). */
static int transfer(struct store *st, int put, const char *name, const char *path, char *err,
                    size_t errsize)
{
    uint64_t bytes = 0;
    int rc = bad_name(st, name, err, errsize);
    if (rc < 0)
        return rc;
    const struct backend *b = st->u.kind == STORE_FILE ? &file_backend : &s3_backend;
    rc = (put ? b->put : b->get)(st, name, path, &bytes, err, errsize);
    if (rc < 0) {
        if (put || rc != -ENOENT)
            atomic_fetch_add(&st->errors, 1);
        return rc;
    }
    atomic_fetch_add(put ? &st->puts : &st->gets, 1);
    atomic_fetch_add(put ? &st->put_bytes : &st->get_bytes, bytes);
    return 0;
}

int store_put(struct store *st, const char *name, const char *path, char *err, size_t errsize)
{
    return transfer(st, 1, name, path, err, errsize);
}

int store_get(struct store *st, const char *name, const char *path, char *err, size_t errsize)
{
    return transfer(st, 0, name, path, err, errsize);
}

int store_delete(struct store *st, const char *name, char *err, size_t errsize)
{
    int rc = bad_name(st, name, err, errsize);
    if (rc < 0)
        return rc;
    rc = (st->u.kind == STORE_FILE ? &file_backend : &s3_backend)->del(st, name, err, errsize);
    atomic_fetch_add(rc < 0 ? &st->errors : &st->deletes, 1);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int store_list(struct store *st, const char *prefix, char ***names, size_t *n, char *err,
               size_t errsize)
{
    struct names l = { 0 };
    *names = NULL;
    *n = 0;
    /* a prefix is a name, or a name's beginning: "job/p3/" or "job/p" */
    size_t pl = strlen(prefix);
    char why[256], trimmed[STORE_NAME_MAX + 1];
    if (pl > STORE_NAME_MAX) {
        snprintf(err, errsize, "%s: list prefix longer than %d bytes", st->url, STORE_NAME_MAX);
        atomic_fetch_add(&st->errors, 1);
        return -EINVAL;
    }
    memcpy(trimmed, prefix, pl + 1);
    if (pl > 0 && trimmed[pl - 1] == '/')
        trimmed[pl - 1] = '\0';
    if (trimmed[0] != '\0' && store_url_name_check(trimmed, why, sizeof(why)) < 0) {
        snprintf(err, errsize, "%s: list prefix: %s", st->url, why);
        atomic_fetch_add(&st->errors, 1);
        return -EINVAL;
    }
    int rc;
    if (st->u.kind == STORE_FILE) {
        /* start at the deepest directory the prefix names */
        char rel[STORE_NAME_MAX + 1];
        snprintf(rel, sizeof(rel), "%s", prefix);
        char *slash = strrchr(rel, '/');
        if (slash != NULL)
            *slash = '\0';
        else
            rel[0] = '\0';
        rc = file_walk(st, rel, prefix, &l, 0, err, errsize);
    } else {
        rc = s3_list(st, prefix, &l, err, errsize);
    }
    if (rc < 0) {
        store_names_free(l.v, l.n);
        atomic_fetch_add(&st->errors, 1);
        return rc;
    }
    if (l.n > 1)
        qsort(l.v, l.n, sizeof(*l.v), cmp_str);
    *names = l.v;
    *n = l.n;
    return 0;
}

void store_names_free(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

void store_get_stats(const struct store *st, struct store_stats *out)
{
    out->put_bytes = atomic_load(&st->put_bytes);
    out->get_bytes = atomic_load(&st->get_bytes);
    out->puts = atomic_load(&st->puts);
    out->gets = atomic_load(&st->gets);
    out->deletes = atomic_load(&st->deletes);
    out->errors = atomic_load(&st->errors);
}
