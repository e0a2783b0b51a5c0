/*
 * compiler.h - compiler attributes used in every folder.
 *
 * It lives in config/, the bottom of the include order (engine/,
 * connectors/ and cmd/ all include config/ headers, never the other way
 * round), so any file can include it without pulling in anything else.
 *
 * SL_MUST_USE marks a function whose result must not be ignored: one that
 * can fail (0 or a negative errno, docs/internals.md "Errors") or that
 * hands out something to free.  GCC warns at every call that drops it, and
 * the build turns warnings into errors; a cast to void does not silence
 * it, which is the point: a caller that may ignore a failure says so with
 * an `if` and a comment.
 */
#ifndef SLUICE_COMPILER_H
#define SLUICE_COMPILER_H

#define SL_MUST_USE __attribute__((warn_unused_result))

#endif
