/*
 * redis_cluster.c - hash slots, the slot map and redirections of a Redis
 * Cluster (redis_cluster.h).
 *
 * A cluster splits its keys into 16384 slots by CRC16 (the XMODEM variant:
 * polynomial 0x1021, initial value 0, no reflection) of the key, or of its
 * hash tag, so that keys sharing a tag share a node.  Each slot is served
 * by one primary; CLUSTER SLOTS lists the ranges.  A node asked for a key
 * of a slot it does not serve answers MOVED (the slot lives elsewhere now:
 * update the map) or, while a slot migrates, ASK (this key is already on
 * the target: ask it there once, after ASKING).
 *
 * The CRC table is built on first use; everything here runs on the loop
 * thread (and in the unit tests), so a plain flag guards it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis_cluster.h"

static uint16_t crc_table[256];
static int crc_ready;

static void crc_init(void)
{
    for (unsigned i = 0; i < 256; i++) {
        uint16_t c = (uint16_t)(i << 8);
        for (int b = 0; b < 8; b++)
            c = (uint16_t)(c & 0x8000 ? (c << 1) ^ 0x1021 : c << 1);
        crc_table[i] = c;
    }
    crc_ready = 1;
}

static uint16_t crc16(const unsigned char *p, size_t n)
{
    uint16_t c = 0;
    if (!crc_ready)
        crc_init();
    while (n-- > 0)
        c = (uint16_t)((c << 8) ^ crc_table[((c >> 8) ^ *p++) & 0xff]);
    return c;
}

unsigned redis_slot(const char *key, size_t len)
{
    const char *open = memchr(key, '{', len);
    if (open != NULL) {
        size_t rest = len - (size_t)(open - key) - 1;
        const char *close = memchr(open + 1, '}', rest);
        if (close != NULL && close > open + 1) {
            key = open + 1;
            len = (size_t)(close - key);
        }
    }
    return crc16((const unsigned char *)key, len) & (REDIS_SLOTS - 1);
}

void redis_slot_map_init(struct redis_slot_map *m)
{
    m->nodes = NULL;
    m->nnodes = 0;
    for (size_t i = 0; i < REDIS_SLOTS; i++)
        m->slot[i] = REDIS_SLOT_NONE;
}

void redis_slot_map_free(struct redis_slot_map *m)
{
    free(m->nodes);
    redis_slot_map_init(m);
}

int redis_slot_map_find(const struct redis_slot_map *m, const char *host, int port)
{
    for (size_t i = 0; i < m->nnodes; i++)
        if (m->nodes[i].port == port && strcmp(m->nodes[i].host, host) == 0)
            return (int)i;
    return -1;
}

size_t redis_slot_map_uncovered(const struct redis_slot_map *m)
{
    size_t n = 0;
    for (size_t i = 0; i < REDIS_SLOTS; i++)
        n += m->slot[i] == REDIS_SLOT_NONE;
    return n;
}

/* An endpoint's host: "" and "?" mean the node that answered. */
static int set_host(struct redis_node_addr *a, const char *host, size_t len,
                    const char *asked_host)
{
    if (len == 0 || (len == 1 && host[0] == '?')) {
        host = asked_host;
        len = strlen(asked_host);
    }
    if (len >= sizeof(a->host))
        return -EPROTO;
    memcpy(a->host, host, len);
    a->host[len] = '\0';
    return 0;
}

static int is_int(const redisReply *r)
{
    return r != NULL && r->type == REDIS_REPLY_INTEGER;
}

/* The node of one range's primary entry [host, port, id, ...]: its index
 * in m (added when new), or a negative code. */
static int range_node(struct redis_slot_map *m, const redisReply *e, const char *asked_host,
                      size_t *cap)
{
    struct redis_node_addr a;
    if (e == NULL || e->type != REDIS_REPLY_ARRAY || e->elements < 2 ||
        e->element[0]->type != REDIS_REPLY_STRING || !is_int(e->element[1]) ||
        e->element[1]->integer < 1 || e->element[1]->integer > 65535)
        return -EPROTO;
    if (set_host(&a, e->element[0]->str, e->element[0]->len, asked_host) < 0)
        return -EPROTO;
    a.port = (int)e->element[1]->integer;
    a.replicas = 0;
    int i = redis_slot_map_find(m, a.host, a.port);
    if (i >= 0)
        return i;
    if (m->nnodes >= REDIS_SLOT_NONE)
        return -EPROTO;
    if (m->nnodes == *cap) {
        size_t nc = *cap ? *cap * 2 : 8;
        struct redis_node_addr *n = realloc(m->nodes, nc * sizeof(*n));
        if (n == NULL)
            return -ENOMEM;
        m->nodes = n;
        *cap = nc;
    }
    m->nodes[m->nnodes] = a;
    return (int)m->nnodes++;
}

int redis_slot_map_parse(struct redis_slot_map *m, const redisReply *rep,
                         const char *asked_host, char *err, size_t errsize)
{
    size_t cap = 0;
    redis_slot_map_free(m);
    if (rep == NULL || rep->type != REDIS_REPLY_ARRAY) {
        snprintf(err, errsize, "CLUSTER SLOTS: %s", rep != NULL && rep->type ==
                 REDIS_REPLY_ERROR ? rep->str : "not an array");
        return -EPROTO;
    }
    for (size_t r = 0; r < rep->elements; r++) {
        const redisReply *e = rep->element[r];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 || !is_int(e->element[0]) ||
            !is_int(e->element[1]) || e->element[0]->integer < 0 ||
            e->element[1]->integer >= REDIS_SLOTS ||
            e->element[0]->integer > e->element[1]->integer) {
            snprintf(err, errsize, "CLUSTER SLOTS: range %zu is not [start, end, node...]", r);
            goto fail;
        }
        int node = range_node(m, e->element[2], asked_host, &cap);
        if (node == -ENOMEM) {
            snprintf(err, errsize, "CLUSTER SLOTS: out of memory");
            redis_slot_map_free(m);
            return -ENOMEM;
        }
        if (node < 0) {
            snprintf(err, errsize, "CLUSTER SLOTS: range %zu has no [host, port] primary", r);
            goto fail;
        }
        m->nodes[node].replicas = (int)(e->elements - 3);
        for (long long s = e->element[0]->integer; s <= e->element[1]->integer; s++)
            m->slot[s] = (uint16_t)node;
    }
    if (m->nnodes == 0) {
        snprintf(err, errsize, "CLUSTER SLOTS: no slot is served");
        goto fail;
    }
    return 0;
fail:
    redis_slot_map_free(m);
    return -EPROTO;
}

enum redis_redirect redis_redirect_parse(const char *err, size_t len, const char *asked_host,
                                         unsigned *slot, struct redis_node_addr *to)
{
    enum redis_redirect kind;
    size_t i;
    if (len > 6 && memcmp(err, "MOVED ", 6) == 0) {
        kind = REDIS_REDIRECT_MOVED;
        i = 6;
    } else if (len > 4 && memcmp(err, "ASK ", 4) == 0) {
        kind = REDIS_REDIRECT_ASK;
        i = 4;
    } else {
        return REDIS_REDIRECT_NONE;
    }
    unsigned s = 0;
    size_t d = i;
    while (i < len && err[i] >= '0' && err[i] <= '9' && s < REDIS_SLOTS)
        s = s * 10 + (unsigned)(err[i++] - '0');
    if (i == d || s >= REDIS_SLOTS || i >= len || err[i++] != ' ')
        return REDIS_REDIRECT_NONE;
    /* host:port, the port after the last ':' (an IPv6 host has several) */
    const char *ep = err + i, *end = err + len;
    const char *colon = NULL;
    for (const char *p = ep; p < end; p++)
        if (*p == ':')
            colon = p;
    if (colon == NULL)
        return REDIS_REDIRECT_NONE;
    long port = 0;
    const char *p = colon + 1;
    while (p < end && *p >= '0' && *p <= '9' && port <= 65535)
        port = port * 10 + (*p++ - '0');
    if (p == colon + 1 || p != end || port < 1 || port > 65535)
        return REDIS_REDIRECT_NONE;
    if (set_host(to, ep, (size_t)(colon - ep), asked_host) < 0)
        return REDIS_REDIRECT_NONE;
    to->port = (int)port;
    *slot = s;
    return kind;
}
