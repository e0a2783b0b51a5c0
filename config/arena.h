/*
 * arena.h - bump allocator for objects that live and die together.
 *
 * The job model is built once at load time and freed as a whole when the
 * job is replaced or the process exits.  Allocating every string, list and
 * expression node from one arena means the loader never has to unwind a
 * half-built model on error: arena_free() releases everything, which keeps
 * the error paths short and the fuzzer leak-free.
 *
 * Not thread-safe; the owner of the arena is the only user.
 */
#ifndef SLUICE_ARENA_H
#define SLUICE_ARENA_H

#include <stddef.h>

struct arena_chunk;

struct arena {
    struct arena_chunk *head;   /* newest chunk; older ones linked behind */
    size_t total;               /* bytes handed out, for accounting */
};

/* Zero-initialised struct arena is an empty arena; no init call needed. */

/* Returns zeroed memory aligned for any object, or NULL when out of memory. */
void *arena_alloc(struct arena *a, size_t size);

/* Copies len bytes of s and NUL-terminates; NULL when out of memory. */
char *arena_strndup(struct arena *a, const char *s, size_t len);
char *arena_strdup(struct arena *a, const char *s);

/* printf into the arena; NULL when out of memory. */
char *arena_printf(struct arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Releases every allocation; the arena is empty and reusable afterwards. */
void arena_free(struct arena *a);

#endif
