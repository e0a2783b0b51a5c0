/*
 * op_types.c - the table of operator types (config/optype.h).
 *
 * One line per type; each type's descriptor is defined in its own file,
 * next to the code that runs it.  The order is the one messages list the
 * types in: the window types as `type:` names them, then the other
 * blocks of an operator (reduce, detect, join).
 */
#include "engine_int.h"

extern const struct op_type op_type_tumbling, op_type_sliding, op_type_session,
    op_type_global, op_type_reduce, op_type_detect, op_type_join, op_type_count;

const struct op_type *const op_types[] = {
    &op_type_tumbling,          /* win_sliding.c */
    &op_type_sliding,           /* win_sliding.c */
    &op_type_session,           /* win_session.c */
    &op_type_global,            /* win_global.c */
    &op_type_reduce,            /* win_reduce.c */
    &op_type_detect,            /* win_detect.c */
    &op_type_join,              /* win_join.c */
    &op_type_count,             /* win_count.c */
    NULL,
};
