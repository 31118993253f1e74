/* SPDX-License-Identifier: MIT */
/* test_events.c -- event JSON as subscribers receive it: the hand-written delta encoder and the
 * jansson path must both produce one-line JSON that parses back to the exact content (quotes,
 * control characters, multi-byte UTF-8), with numbering as the SSE ids need it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/agent_int.h"
#include "core/util.h"
#include "core/xalloc.h"

struct collected {
    struct agent_sub sub;
    json_t *events; /* parsed */
    int64_t seqs[64];
    size_t n;
};

static void collect(struct agent_sub *sub, struct agent_event *ev)
{
    struct collected *c = sub->data;
    assert_null(memchr(ev->json, '\n', ev->len));
    assert_int_equal(strlen(ev->json), ev->len);
    json_error_t je;
    json_t *j = json_loadb(ev->json, ev->len, 0, &je);
    assert_non_null(j);
    json_array_append_new(c->events, j);
    c->seqs[c->n++] = ev->seq;
}

static char tmpdir[] = "/tmp/tars-events-XXXXXX";

static int setup(void **state)
{
    assert_non_null(mkdtemp(tmpdir));
    struct agent_options o = {.loop = NULL, .workspace = tmpdir, .max_iterations = 3};
    agent_init(&o);
    return 0;
}

static int teardown(void **state)
{
    agent_shutdown();
    return rmdir(tmpdir); /* not isolated: the session used tmpdir itself */
}

static void test_delta_escaping(void **state)
{
    static const char *contents[] = {
        "plain", "quote \" backslash \\ slash /", "nl\ncr\rtab\tbell\x07 esc\x1b",
        "h\xc3\xa9llo \xe4\xb8\x96\xe7\x95\x8c \xf0\x9f\x98\x80", "", "</script><img src=x>",
    };
    char *err = NULL;
    struct agent_session *s = agent_session_create(NULL, &err);
    assert_non_null(s);
    struct collected c = {.events = json_array()};
    c.sub.on_event = collect;
    c.sub.data = &c;
    agent_subscribe(s, &c.sub);
    size_t n = sizeof(contents) / sizeof(contents[0]);
    for (size_t i = 0; i < n; i++)
        agent__emit_delta(s, "assistant_streaming_message", contents[i], strlen(contents[i]),
                          "msg_1_abcdefgh");
    json_t *ev = agent__event_new("system");
    json_object_set_new(ev, "level", json_string("info"));
    json_object_set_new(ev, "message", json_string("a \"b\"\n\xe4\xb8\x96"));
    agent__emit_new(s, ev);
    for (size_t i = 0; i < n; i++)
        agent__emit_delta(s, "assistant_streaming_thinking_message", "t", 1, "m");
    assert_int_equal(c.n, 2 * n + 1);
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(c.events, i);
        assert_string_equal(json_get_str(e, "content"), contents[i]);
        assert_string_equal(json_get_str(e, "type"), "assistant_streaming_message");
        assert_string_equal(json_get_str(e, "messageId"), "msg_1_abcdefgh");
        assert_int_equal(strlen(json_get_str(e, "id")), 36);
        assert_true(json_is_integer(json_object_get(e, "timestamp")));
        assert_true(json_is_false(json_object_get(e, "isComplete")));
        /* Deltas are not persisted: they carry the id of the last stored event (none yet). */
        assert_int_equal(c.seqs[i], 0);
    }
    json_t *sys = json_array_get(c.events, n);
    assert_string_equal(json_get_str(sys, "message"), "a \"b\"\n\xe4\xb8\x96");
    assert_int_equal(c.seqs[n], 1);
    assert_int_equal(c.seqs[2 * n], 1);
    /* Key order as the reference: id, type, timestamp first. */
    const char *k;
    json_t *v;
    const char *order[3];
    size_t i = 0;
    json_object_foreach(sys, k, v) if (i < 3) order[i++] = k;
    assert_string_equal(order[0], "id");
    assert_string_equal(order[1], "type");
    assert_string_equal(order[2], "timestamp");
    agent_unsubscribe(s, &c.sub);
    json_decref(c.events);
    xfree(err);
}

int main(void)
{
    json_set_alloc_funcs(xmalloc, xfree);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delta_escaping),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
