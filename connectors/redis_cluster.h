/*
 * redis_cluster.h - what the Redis sink must know of a Redis Cluster: the
 * hash slot of a key, the map of slots to primaries (from CLUSTER SLOTS),
 * and the redirections a node answers with (MOVED, ASK).
 *
 * Pure functions over bytes and parsed replies: no sockets, no loop.  The
 * sink (redis_sink.c) owns the connections and decides when to refresh.
 */
#ifndef SLUICE_REDIS_CLUSTER_H
#define SLUICE_REDIS_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis.h>

#include "../config/compiler.h"

#define REDIS_SLOTS 16384
#define REDIS_SLOT_NONE UINT16_MAX      /* a slot no primary serves */
#define REDIS_HOST_MAX 256

/* The slot of a key: CRC16 (XMODEM) of the key, or of its hash tag (the
 * bytes between the first '{' and the first '}' after it, when there is at
 * least one), modulo 16384. */
unsigned redis_slot(const char *key, size_t len);

struct redis_node_addr {
    char host[REDIS_HOST_MAX];
    int port;
    int replicas;                       /* in a slot map: replicas CLUSTER SLOTS lists */
};

/* The primaries of a cluster and which of them serves each slot. */
struct redis_slot_map {
    struct redis_node_addr *nodes;      /* malloc'ed; nnodes of them */
    size_t nnodes;
    uint16_t slot[REDIS_SLOTS];         /* index into nodes, or REDIS_SLOT_NONE */
};

/* An empty map (no node, every slot REDIS_SLOT_NONE). */
void redis_slot_map_init(struct redis_slot_map *m);

/* Builds m (its previous contents freed) from a reply to CLUSTER SLOTS:
 * an array of [start, end, [host, port, id...], replicas...].  A host that
 * is empty or "?" (a node that does not know its own address) is taken to
 * be asked_host, the node that answered.  Returns 0; or -EPROTO for a
 * reply of another shape, or one that covers no slot, with a message in
 * err (m is then left empty); or -ENOMEM. */
SL_MUST_USE int redis_slot_map_parse(struct redis_slot_map *m, const redisReply *rep,
                                     const char *asked_host, char *err, size_t errsize);

/* Slots no primary serves (a cluster being set up, or a failed node's). */
size_t redis_slot_map_uncovered(const struct redis_slot_map *m);

/* The index of the node host:port, or -1. */
int redis_slot_map_find(const struct redis_slot_map *m, const char *host, int port);

void redis_slot_map_free(struct redis_slot_map *m);

enum redis_redirect {
    REDIS_REDIRECT_NONE,                /* not a redirection */
    REDIS_REDIRECT_MOVED,               /* the slot now lives at host:port */
    REDIS_REDIRECT_ASK,                 /* this key, once, at host:port after ASKING */
};

/* An error reply's text "MOVED <slot> <host>:<port>" or "ASK ...": which
 * one, and where to.  An endpoint of "" or "?" before the port (Redis 7:
 * the node's address is unknown) gives asked_host. */
enum redis_redirect redis_redirect_parse(const char *err, size_t len, const char *asked_host,
                                         unsigned *slot, struct redis_node_addr *to);

#endif
