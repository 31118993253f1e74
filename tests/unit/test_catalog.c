/* SPDX-License-Identifier: MIT */
/* test_catalog.c -- the model catalogue (server.models and the CLI's model.providers merged
 * after the default model, de-duplicated by id, endpoints and keys resolved without ever giving
 * the default's key to another endpoint, keys from named environment variables, the public list
 * without secrets), and the provider table's request side: URLs (Azure), auth-free bodies for
 * openai-non-streaming, the reasoning replay switch, model.params. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/util.h"
#include "core/xalloc.h"
#include "llm/llm.h"

static json_t *parse(const char *s)
{
    json_error_t e;
    json_t *j = json_loads(s, 0, &e);
    if (j == NULL)
        fail_msg("bad test JSON: %s", e.text);
    return j;
}

/* A fake environment: KEY_B=secret-b, GEMINI_API_KEY=gem-key; records secrets asked for. */
static char seen[256];

static const char *fake_env(void *data, const char *s, bool secret)
{
    (void)data;
    if (secret) {
        strncat(seen, s, sizeof(seen) - strlen(seen) - 2);
        strncat(seen, ",", sizeof(seen) - strlen(seen) - 1);
    }
    if (strcmp(s, "KEY_B") == 0)
        return "secret-b";
    if (strcmp(s, "GEMINI_API_KEY") == 0)
        return "gem-key";
    return s;
}

static const struct llm_config def = {.provider = "openai-compatible", .model = "model-a",
                                      .base_url = "http://a/v1", .api_key = "key-a",
                                      .max_tokens = 77, .temperature = -1, .thinking = -1};

static const char config_json[] =
    "{\"server\":{\"models\":["
    "{\"provider\":\"openai-compatible\",\"id\":\"model-b\",\"displayName\":\"B\","
    "\"baseURL\":\"http://b/v1\",\"apiKey\":\"KEY_B\",\"headers\":{\"X-Team\":\"t1\"},"
    "\"params\":{\"top_p\":0.5}},"
    "{\"provider\":\"openai-compatible\",\"id\":\"model-a\",\"baseURL\":\"http://dup\"},"
    "{\"provider\":\"openai-compatible\",\"id\":\"same-endpoint\"},"
    "{\"provider\":\"openai-compatible\",\"id\":\"own-url\",\"baseURL\":\"http://c/v1\"},"
    "{\"provider\":\"gemini\",\"id\":\"gemini-2.5-flash\",\"toolCallEngine\":"
    "\"structured_outputs\"},"
    "{\"provider\":\"azure-openai\",\"id\":\"dep1\",\"baseURL\":\"https://r.openai.azure.com\","
    "\"apiKey\":\"az\",\"apiVersion\":\"2025-01-01\"}]},"
    "\"model\":{\"providers\":[{\"name\":\"anthropic\",\"apiKey\":\"ak\",\"models\":["
    "\"claude-x\",{\"id\":\"claude-y\",\"displayName\":\"Y\"},\"model-b\"]}]}}";

static void test_merge(void **state)
{
    (void)state;
    json_t *root = parse(config_json);
    struct llm_catalog cat;
    char *err = NULL;
    seen[0] = '\0';
    assert_int_equal(llm_catalog_build(&cat, &def, "A", root, fake_env, NULL, &err), 0);
    assert_null(err);
    static const char *const ids[] = {"model-a", "model-b",  "same-endpoint", "own-url",
                                      "gemini-2.5-flash", "dep1", "claude-x", "claude-y"};
    assert_int_equal(cat.n, 8);
    for (size_t i = 0; i < cat.n; i++)
        assert_string_equal(cat.models[i].cfg->model, ids[i]);
    assert_ptr_equal(cat.models[0].cfg, &def);

    const struct llm_model *b = llm_catalog_find(&cat, "openai-compatible", "model-b");
    assert_non_null(b);
    assert_string_equal(b->cfg->base_url, "http://b/v1");
    assert_string_equal(b->cfg->api_key, "secret-b");
    assert_string_equal(b->cfg->headers[0], "X-Team: t1");
    assert_null(b->cfg->headers[1]);
    assert_true(json_real_value(json_object_get(b->cfg->params, "top_p")) == 0.5);
    assert_int_equal(b->cfg->max_tokens, 77); /* the rest is the default's */
    assert_null(llm_catalog_find(&cat, "anthropic", "model-b")); /* dropped as a duplicate */
    assert_null(llm_catalog_find(&cat, "openai", "model-b"));    /* provider must match */

    /* The default's endpoint comes with the default's key; an own endpoint gets no key. */
    const struct llm_model *same = llm_catalog_find(&cat, "openai-compatible", "same-endpoint");
    assert_string_equal(same->cfg->base_url, "http://a/v1");
    assert_string_equal(same->cfg->api_key, "key-a");
    const struct llm_model *own = llm_catalog_find(&cat, "openai-compatible", "own-url");
    assert_string_equal(own->cfg->base_url, "http://c/v1");
    assert_null(own->cfg->api_key);

    /* Another provider: its default base URL and its key variable. */
    const struct llm_model *g = llm_catalog_find(&cat, "gemini", "gemini-2.5-flash");
    assert_string_equal(g->cfg->base_url, "https://generativelanguage.googleapis.com/v1beta/openai");
    assert_string_equal(g->cfg->api_key, "gem-key");
    assert_int_equal(g->cfg->tool_call_engine, LLM_ENGINE_STRUCTURED_OUTPUTS);
    const struct llm_model *c = llm_catalog_find(&cat, "anthropic", "claude-y");
    assert_string_equal(c->cfg->base_url, "https://api.anthropic.com");
    assert_string_equal(c->cfg->api_key, "ak");
    assert_string_equal(c->display_name, "Y");
    assert_non_null(strstr(seen, "KEY_B,"));
    assert_non_null(strstr(seen, "GEMINI_API_KEY,"));

    /* Azure: its URL scheme, api-version from the entry. */
    const struct llm_model *az = llm_catalog_find(&cat, "azure-openai", "dep1");
    char *url = llm_request_url(az->cfg);
    assert_string_equal(url, "https://r.openai.azure.com/openai/deployments/dep1/chat/"
                             "completions?api-version=2025-01-01");
    xfree(url);

    /* The public list: ids, providers and names only. */
    json_t *pub = llm_catalog_public(&cat);
    char *s = json_dumps(pub, JSON_COMPACT);
    assert_string_equal(
        s, "[{\"id\":\"model-a\",\"provider\":\"openai-compatible\",\"displayName\":\"A\"},"
           "{\"id\":\"model-b\",\"provider\":\"openai-compatible\",\"displayName\":\"B\"},"
           "{\"id\":\"same-endpoint\",\"provider\":\"openai-compatible\"},"
           "{\"id\":\"own-url\",\"provider\":\"openai-compatible\"},"
           "{\"id\":\"gemini-2.5-flash\",\"provider\":\"gemini\"},"
           "{\"id\":\"dep1\",\"provider\":\"azure-openai\"},"
           "{\"id\":\"claude-x\",\"provider\":\"anthropic\"},"
           "{\"id\":\"claude-y\",\"provider\":\"anthropic\",\"displayName\":\"Y\"}]");
    assert_null(strstr(s, "key"));
    xfree(s);
    json_decref(pub);

    /* With no default chosen, the first entry takes its place. */
    struct llm_config d2 = def;
    llm_catalog_promote_first(&cat, &d2);
    cat.models[0].cfg = &d2;
    assert_string_equal(d2.model, "model-b");
    assert_string_equal(d2.api_key, "secret-b");
    assert_int_equal(cat.n, 7);
    assert_string_equal(cat.models[1].cfg->model, "same-endpoint");
    llm_catalog_release(&cat);
    json_decref(root);
}

static void test_errors(void **state)
{
    (void)state;
    static const struct {
        const char *json, *msg;
    } bad[] = {
        {"{\"server\":{\"models\":{}}}", "server.models must be an array"},
        {"{\"server\":{\"models\":[{\"id\":\"x\"}]}}", "server.models[0] needs"},
        {"{\"server\":{\"models\":[{\"provider\":\"p\",\"id\":\"x\",\"headers\":{\"A\":\"b\\r\\n"
         "Evil: 1\"}}]}}",
         "server.models[0].headers['A']"},
        {"{\"server\":{\"models\":[{\"provider\":\"p\",\"id\":\"x\",\"params\":3}]}}",
         "server.models[0].params must be an object"},
        {"{\"server\":{\"models\":[{\"provider\":\"p\",\"id\":\"x\",\"toolCallEngine\":\"y\"}]}}",
         "toolCallEngine 'y' is unknown"},
        {"{\"model\":{\"providers\":[{\"name\":\"p\"}]}}", "model.providers[0] needs"},
        {"{\"model\":{\"providers\":[{\"name\":\"p\",\"models\":[3]}]}}",
         "model.providers[0].models[0] must be"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *root = parse(bad[i].json);
        struct llm_catalog cat;
        char *err = NULL;
        assert_int_equal(llm_catalog_build(&cat, &def, NULL, root, fake_env, NULL, &err), -1);
        if (err == NULL || strstr(err, bad[i].msg) == NULL)
            fail_msg("case %zu: error '%s', want '%s'", i, err ? err : "(none)", bad[i].msg);
        xfree(err);
        json_decref(root);
    }
}

static void test_providers(void **state)
{
    (void)state;
    assert_true(llm_provider_known("perplexity"));
    assert_false(llm_provider_known("my-proxy"));
    assert_string_equal(llm_provider_get("my-proxy")->name, "openai-compatible");
    assert_string_equal(llm_provider_get("mistral")->base_url, "https://api.mistral.ai/v1");
    assert_string_equal(llm_provider_get("perplexity")->base_url, "https://api.perplexity.ai");
    struct llm_config cfg = {.provider = "azure-openai", .model = "my dep",
                             .base_url = "https://r.openai.azure.com/openai/", .thinking = -1,
                             .temperature = -1};
    char *url = llm_request_url(&cfg);
    assert_string_equal(url, "https://r.openai.azure.com/openai/deployments/my%20dep/chat/"
                             "completions?api-version=2024-10-21");
    xfree(url);

    /* Reasoning replay: deepseek drops it, others send it, the switch overrides. */
    json_t *msgs = parse("[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\","
                         "\"content\":\"a\",\"reasoning_content\":\"r\",\"reasoning_signature\":"
                         "\"sig\"}]");
    static const struct {
        const char *provider;
        int replay;
        bool kept;
    } rr[] = {{"deepseek", 0, false}, {"openai", 0, true}, {"deepseek", 1, true},
              {"volcengine", -1, false}};
    for (size_t i = 0; i < sizeof(rr) / sizeof(rr[0]); i++) {
        cfg = (struct llm_config){.provider = rr[i].provider, .model = "m", .thinking = -1,
                                  .temperature = -1, .reasoning_replay = rr[i].replay};
        json_t *body = llm_openai_body(&cfg, msgs, NULL);
        const json_t *a = json_array_get(json_object_get(body, "messages"), 1);
        assert_int_equal(json_object_get(a, "reasoning_content") != NULL, rr[i].kept);
        assert_null(json_object_get(a, "reasoning_signature"));
        json_decref(body);
    }
    /* The history itself is not changed. */
    assert_non_null(json_object_get(json_array_get(msgs, 1), "reasoning_signature"));

    /* openai-non-streaming: one unstreamed request; params merged but never over the stream. */
    json_t *params = parse("{\"top_p\":0.9,\"stream\":true,\"seed\":7}");
    cfg = (struct llm_config){.provider = "openai-non-streaming", .model = "m", .thinking = -1,
                              .temperature = -1, .params = params};
    json_t *body = llm_openai_body(&cfg, msgs, NULL);
    assert_true(json_is_false(json_object_get(body, "stream")));
    assert_null(json_object_get(body, "stream_options"));
    assert_int_equal(json_integer_value(json_object_get(body, "seed")), 7);
    assert_true(json_real_value(json_object_get(body, "top_p")) == 0.9);
    json_decref(body);
    json_decref(params);
    json_decref(msgs);
}

int main(void)
{
    json_set_alloc_funcs(xmalloc, xfree);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_providers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
