/* SPDX-License-Identifier: MIT */
/* test_ui.c -- the web UI module's pure parts: base path normalization (a table of accepted and
 * refused values) and the embedded asset table (every file present, typed, and the index page
 * carrying the <base href> that ui_init rewrites). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/xalloc.h"
#include "ui/ui.h"

struct base_case {
    const char *in;
    int rc;
    const char *want;
};

static const struct base_case base_cases[] = {
    {NULL, 0, ""},
    {"", 0, ""},
    {"/", 0, ""},
    {"///", 0, ""},
    {"/agents", 0, "/agents"},
    {"agents", 0, "/agents"},
    {"/agents/", 0, "/agents"},
    {"/a/b-c_d.e~f/", 0, "/a/b-c_d.e~f"},
    {"/a//b", -1, ""},
    {"/a b", -1, ""},
    {"/a\"b", -1, ""},
    {"/a<b", -1, ""},
    {"/a?b", -1, ""},
    {"/a#b", -1, ""},
    {"/a%2fb", -1, ""},
    {"/../x", -1, ""},
    {"/x/..", -1, ""},
    {"/./x", -1, ""},
    {"/x/.y", 0, "/x/.y"},
    {"/\xc3\xa9", -1, ""},
};

static void test_normalize_base(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(base_cases) / sizeof(base_cases[0]); i++) {
        char out[UI_MAX_BASE_BYTES];
        const struct base_case *c = &base_cases[i];
        int rc = ui_normalize_base(c->in, out);
        if (rc != c->rc || strcmp(out, c->want) != 0)
            fail_msg("case %zu '%s': rc %d out '%s', want %d '%s'", i, c->in ? c->in : "(null)", rc,
                     out, c->rc, c->want);
    }
}

static void test_normalize_base_length(void **state)
{
    (void)state;
    char in[UI_MAX_BASE_BYTES + 8], out[UI_MAX_BASE_BYTES];
    memset(in, 'a', sizeof(in) - 1);
    in[0] = '/';
    in[sizeof(in) - 1] = '\0';
    assert_int_equal(ui_normalize_base(in, out), -1);
    in[UI_MAX_BASE_BYTES - 2] = '\0'; /* "/" + 253 letters: fits with its NUL */
    assert_int_equal(ui_normalize_base(in, out), 0);
    assert_int_equal(strlen(out), UI_MAX_BASE_BYTES - 2);
}

static void test_assets(void **state)
{
    (void)state;
    size_t n;
    const struct ui_asset *a = ui__assets(&n);
    assert_true(n >= 5);
    for (size_t i = 0; i < n; i++) {
        assert_non_null(a[i].data);
        assert_true(a[i].len > 100);
        assert_int_equal(a[i].path[0], '/');
        assert_non_null(strstr(a[i].type, "charset=utf-8"));
        /* the blob ends where the file ends: no NUL inside, our terminator right after */
        assert_null(memchr(a[i].data, '\0', a[i].len));
        assert_int_equal(a[i].data[a[i].len], '\0');
        assert_ptr_equal(ui__find(a[i].path), &a[i]);
    }
    const struct ui_asset *idx = ui__find("/index.html");
    assert_non_null(idx);
    assert_non_null(strstr(idx->data, "<base href=\"/\">"));
    assert_non_null(strstr(idx->data, "src=\"app.js\""));
    assert_string_equal(ui__find("/app.js")->type, "text/javascript; charset=utf-8");
    assert_null(ui__find("/nope.js"));
    assert_null(ui__find("app.js"));
}

static void test_init_reads_config(void **state)
{
    (void)state;
    json_t *cfg = json_pack("{s:{s:s}}", "server", "basePath", "/proxy/agents/");
    ui_init(cfg);
    assert_string_equal(ui_base_path(), "/proxy/agents");
    json_decref(cfg);
    cfg = json_pack("{s:{s:s}}", "server", "basePath", "/bad path");
    ui_init(cfg);
    assert_string_equal(ui_base_path(), "");
    json_decref(cfg);
    ui_init(NULL);
    assert_string_equal(ui_base_path(), "");
}

int main(void)
{
    json_set_alloc_funcs(xmalloc, xfree);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalize_base),
        cmocka_unit_test(test_normalize_base_length),
        cmocka_unit_test(test_assets),
        cmocka_unit_test(test_init_reads_config),
    };
    return cmocka_run_group_tests_name("ui", tests, NULL, NULL);
}
