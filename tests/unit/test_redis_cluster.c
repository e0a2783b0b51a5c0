/*
 * test_redis_cluster.c - hash slots (checked against CLUSTER KEYSLOT of
 * redis-server 7.0), slot maps from CLUSTER SLOTS replies of every shape a
 * node may give and of shapes it must not, and MOVED / ASK redirections.
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis.h>

#include "../../connectors/redis_cluster.h"
#include "suites.h"

START_TEST(slots_match_redis)
{
    /* what `redis-cli cluster keyslot K` answered */
    static const struct { const char *key; unsigned slot; } cases[] = {
        { "123456789", 12739 }, { "foo", 12182 }, { "bar", 5061 }, { "hello", 866 },
        { "{user1000}.following", 3443 }, { "foo{}{bar}", 8363 }, { "foo{{bar}}zap", 4015 },
        { "foo{bar}{zap}", 5061 }, { "user_features:u42", 5800 }, { "", 0 }, { "{}", 15257 },
        { "a{b", 13340 },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        ck_assert_msg(redis_slot(cases[i].key, strlen(cases[i].key)) == cases[i].slot,
                      "slot of \"%s\": expected %u, got %u", cases[i].key, cases[i].slot,
                      redis_slot(cases[i].key, strlen(cases[i].key)));
    /* a hash tag puts keys together */
    ck_assert_uint_eq(redis_slot("{u1}:a", 6), redis_slot("{u1}:bbbb", 9));
    ck_assert_uint_eq(redis_slot("x{u1}", 5), redis_slot("u1", 2));
}
END_TEST

/* The reply RESP text parses to (the caller frees it). */
static redisReply *reply_of(const char *resp)
{
    redisReader *rd = redisReaderCreate();
    void *rep = NULL;
    ck_assert_int_eq(redisReaderFeed(rd, resp, strlen(resp)), REDIS_OK);
    ck_assert_int_eq(redisReaderGetReply(rd, &rep), REDIS_OK);
    ck_assert_msg(rep != NULL, "expected a whole reply in %s", resp);
    redisReaderFree(rd);
    return rep;
}

/* [start, end, [host, port, id]] as RESP */
#define RANGE(a, b, host, port) \
    "*3\r\n:" a "\r\n:" b "\r\n*3\r\n$" host "\r\n:" port "\r\n$2\r\nid\r\n"

START_TEST(slot_map_three_primaries)
{
    redisReply *rep = reply_of("*3\r\n"
        RANGE("0", "5460", "9\r\n127.0.0.1", "7001")
        /* with a replica after the primary */
        "*4\r\n:5461\r\n:10922\r\n*3\r\n$9\r\n127.0.0.1\r\n:7002\r\n$2\r\nid\r\n"
        "*3\r\n$9\r\n127.0.0.1\r\n:7005\r\n$2\r\nid\r\n"
        RANGE("10923", "16383", "9\r\n127.0.0.1", "7003"));
    struct redis_slot_map m;
    char err[200] = "";
    redis_slot_map_init(&m);
    ck_assert_int_eq(redis_slot_map_parse(&m, rep, "127.0.0.1", err, sizeof(err)), 0);
    ck_assert_uint_eq(m.nnodes, 3);
    ck_assert_uint_eq(redis_slot_map_uncovered(&m), 0);
    ck_assert_int_eq(m.nodes[m.slot[0]].port, 7001);
    ck_assert_int_eq(m.nodes[m.slot[5460]].port, 7001);
    ck_assert_int_eq(m.nodes[m.slot[5461]].port, 7002);
    ck_assert_int_eq(m.nodes[m.slot[5461]].replicas, 1);
    ck_assert_int_eq(m.nodes[m.slot[0]].replicas, 0);
    ck_assert_int_eq(m.nodes[m.slot[16383]].port, 7003);
    ck_assert_int_eq(redis_slot_map_find(&m, "127.0.0.1", 7002), m.slot[6000]);
    ck_assert_int_eq(redis_slot_map_find(&m, "127.0.0.1", 7005), -1);
    redis_slot_map_free(&m);
    ck_assert_uint_eq(m.nnodes, 0);
    freeReplyObject(rep);
}
END_TEST

START_TEST(slot_map_split_ranges_and_unknown_host)
{
    /* one primary serving two ranges (after a reshard), one that does not
     * know its address ("" and "?"), and a gap */
    redisReply *rep = reply_of("*4\r\n"
        RANGE("0", "99", "9\r\n127.0.0.1", "7001")
        RANGE("200", "299", "9\r\n127.0.0.1", "7001")
        RANGE("100", "149", "0\r\n", "7002")
        RANGE("300", "16383", "1\r\n?", "7003"));
    struct redis_slot_map m;
    char err[200] = "";
    redis_slot_map_init(&m);
    ck_assert_int_eq(redis_slot_map_parse(&m, rep, "10.0.0.9", err, sizeof(err)), 0);
    ck_assert_uint_eq(m.nnodes, 3);
    ck_assert_uint_eq(redis_slot_map_uncovered(&m), 50);
    ck_assert_int_eq(m.slot[250], m.slot[50]);
    ck_assert_int_eq(m.slot[150], REDIS_SLOT_NONE);
    ck_assert_str_eq(m.nodes[m.slot[120]].host, "10.0.0.9");
    ck_assert_str_eq(m.nodes[m.slot[400]].host, "10.0.0.9");
    ck_assert_int_eq(m.nodes[m.slot[400]].port, 7003);
    redis_slot_map_free(&m);
    freeReplyObject(rep);
}
END_TEST

START_TEST(slot_map_refuses_other_shapes)
{
    static const char *const bad[] = {
        "-ERR This instance has cluster support disabled\r\n",
        "*0\r\n",                                                   /* nothing served */
        "+OK\r\n",
        "*1\r\n*2\r\n:0\r\n:5\r\n",                                 /* no node */
        "*1\r\n" RANGE("5", "4", "9\r\n127.0.0.1", "7001"),         /* start > end */
        "*1\r\n" RANGE("0", "16384", "9\r\n127.0.0.1", "7001"),     /* past the last slot */
        "*1\r\n" RANGE("-1", "3", "9\r\n127.0.0.1", "7001"),
        "*1\r\n" RANGE("0", "3", "9\r\n127.0.0.1", "0"),            /* bad port */
        "*1\r\n" RANGE("0", "3", "9\r\n127.0.0.1", "65536"),
        "*1\r\n*3\r\n:0\r\n:3\r\n*1\r\n$9\r\n127.0.0.1\r\n",       /* host without port */
        "*1\r\n*3\r\n:0\r\n:3\r\n*2\r\n:1\r\n:7001\r\n",           /* host not a string */
        "*1\r\n*3\r\n$1\r\n0\r\n:3\r\n*2\r\n$1\r\nh\r\n:7001\r\n", /* start not an integer */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        redisReply *rep = reply_of(bad[i]);
        struct redis_slot_map m;
        char err[200] = "";
        redis_slot_map_init(&m);
        ck_assert_msg(redis_slot_map_parse(&m, rep, "h", err, sizeof(err)) == -EPROTO,
                      "expected -EPROTO for case %zu", i);
        ck_assert_msg(strncmp(err, "CLUSTER SLOTS: ", 15) == 0, "case %zu: message \"%s\"",
                      i, err);
        ck_assert_uint_eq(m.nnodes, 0);
        ck_assert_uint_eq(redis_slot_map_uncovered(&m), REDIS_SLOTS);
        redis_slot_map_free(&m);
        freeReplyObject(rep);
    }
}
END_TEST

static enum redis_redirect redirect(const char *s, unsigned *slot, struct redis_node_addr *to)
{
    return redis_redirect_parse(s, strlen(s), "10.0.0.9", slot, to);
}

START_TEST(redirections)
{
    unsigned slot = 0;
    struct redis_node_addr to;
    ck_assert_int_eq(redirect("MOVED 3999 127.0.0.1:6381", &slot, &to), REDIS_REDIRECT_MOVED);
    ck_assert_uint_eq(slot, 3999);
    ck_assert_str_eq(to.host, "127.0.0.1");
    ck_assert_int_eq(to.port, 6381);
    ck_assert_int_eq(redirect("ASK 16383 redis-2.example:7000", &slot, &to), REDIS_REDIRECT_ASK);
    ck_assert_uint_eq(slot, 16383);
    ck_assert_str_eq(to.host, "redis-2.example");
    ck_assert_int_eq(redirect("MOVED 0 ::1:7002", &slot, &to), REDIS_REDIRECT_MOVED);
    ck_assert_str_eq(to.host, "::1");
    ck_assert_int_eq(to.port, 7002);
    ck_assert_int_eq(redirect("MOVED 12 :7002", &slot, &to), REDIS_REDIRECT_MOVED);
    ck_assert_str_eq(to.host, "10.0.0.9");
    static const char *const not_redirects[] = {
        "ERR unknown command", "MOVED", "MOVED 16384 h:1", "MOVED x h:1", "MOVED 12 h",
        "MOVED 12 h:", "MOVED 12 h:0", "MOVED 12 h:70000", "MOVED 12 h:12x", "ASK 1",
        "MOVED  12 h:1", "CLUSTERDOWN Hash slot not served", "moved 12 h:1",
    };
    for (size_t i = 0; i < sizeof(not_redirects) / sizeof(not_redirects[0]); i++)
        ck_assert_msg(redirect(not_redirects[i], &slot, &to) == REDIS_REDIRECT_NONE,
                      "expected no redirection in \"%s\"", not_redirects[i]);
}
END_TEST

Suite *redis_cluster_suite(void)
{
    Suite *s = suite_create("redis_cluster");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, slots_match_redis);
    tcase_add_test(tc, slot_map_three_primaries);
    tcase_add_test(tc, slot_map_split_ranges_and_unknown_host);
    tcase_add_test(tc, slot_map_refuses_other_shapes);
    tcase_add_test(tc, redirections);
    suite_add_tcase(s, tc);
    return s;
}
