/* SPDX-License-Identifier: MIT */
/* catalog.c -- the models a session may pick (anchor-api.md F24/F25, §7.2 server.models, §7.1
 * model.providers): each entry a complete llm_config resolved once at start-up (base URL, key
 * from the config or the environment, headers, parameters), the default model first. Pure
 * apart from the environment callback; declared in llm.h. */
#include <ctype.h>
#include <string.h>

#include "../core/util.h"
#include "../core/xalloc.h"
#include "llm.h"

/* What the catalogue owns besides the entries' configs. */
struct owned {
    struct llm_config *cfgs; /* one per entry (entry 0 unused: the default is borrowed) */
    size_t cap;
    void **ptrs; /* strings and header lists */
    size_t nptrs;
    json_t *refs; /* params objects */
};

static const struct llm_catalog *installed;

static char *own(struct owned *o, char *p)
{
    o->ptrs = xrealloc(o->ptrs, (o->nptrs + 1) * sizeof(void *));
    o->ptrs[o->nptrs++] = p;
    return p;
}

static const char *own_str(struct owned *o, const char *s)
{
    return s ? own(o, xstrdup(s)) : NULL;
}

/* A config value that may name an environment variable. */
static const char *env_value(llm_env_cb env, void *data, const char *s, bool secret)
{
    return s && env ? env(data, s, secret) : s;
}

/* The variable's value, or NULL when it is not set. */
static const char *env_only(llm_env_cb env, void *data, const char *name)
{
    if (name == NULL || env == NULL)
        return NULL;
    const char *v = env(data, name, true);
    return v == name ? NULL : v;
}

static bool header_name_ok(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && strchr("!#$%&'*+-.^_`|~", *s) == NULL)
            return false;
    return true;
}

/* headers {name: value} -> "name: value" lines, NULL-terminated. */
static int read_headers(struct owned *o, const json_t *h, const char *const **out, char **err,
                        const char *where)
{
    *out = NULL;
    if (h == NULL)
        return 0;
    if (!json_is_object(h)) {
        *err = xasprintf("%s.headers must be an object of strings", where);
        return -1;
    }
    size_t n = json_object_size(h), i = 0;
    char **lines = (char **)own(o, xcalloc(n + 1, sizeof(char *)));
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)h, k, v)
    {
        const char *s = json_string_value(v);
        if (s == NULL || !header_name_ok(k) || strpbrk(s, "\r\n") != NULL) {
            *err = xasprintf("%s.headers['%s'] must be a string without line breaks, under a "
                             "valid header name", where, k);
            return -1;
        }
        lines[i++] = own(o, xasprintf("%s: %s", k, s));
    }
    *out = (const char *const *)lines;
    return 0;
}

static int read_engine(const json_t *m, int *engine, char **err, const char *where)
{
    const char *e = json_get_str(m, "toolCallEngine");
    if (e == NULL)
        return 0;
    if (strcmp(e, "native") == 0)
        *engine = LLM_ENGINE_NATIVE;
    else if (strcmp(e, "prompt_engineering") == 0)
        *engine = LLM_ENGINE_PROMPT_ENGINEERING;
    else if (strcmp(e, "structured_outputs") == 0)
        *engine = LLM_ENGINE_STRUCTURED_OUTPUTS;
    else {
        *err = xasprintf("%s.toolCallEngine '%s' is unknown (native, prompt_engineering, "
                         "structured_outputs)", where, e);
        return -1;
    }
    return 0;
}

/* headers, params, apiVersion, replayReasoning and toolCallEngine of a model object. */
static int read_options(struct llm_catalog *cat, struct llm_config *cfg, const json_t *m,
                        char **err, const char *where)
{
    struct owned *o = cat->owned;
    if (read_headers(o, json_object_get(m, "headers"), &cfg->headers, err, where) < 0)
        return -1;
    const json_t *params = json_object_get(m, "params");
    if (params != NULL && !json_is_object(params)) {
        *err = xasprintf("%s.params must be an object", where);
        return -1;
    }
    if (params != NULL)
        json_array_append(o->refs, (json_t *)params);
    cfg->params = params;
    const char *v = json_get_str(m, "apiVersion");
    if (v != NULL)
        cfg->api_version = own_str(o, v);
    const json_t *rr = json_object_get(m, "replayReasoning");
    if (json_is_boolean(rr))
        cfg->reasoning_replay = json_is_true(rr) ? 1 : -1;
    return read_engine(m, &cfg->tool_call_engine, err, where);
}

static bool have_id(const struct llm_catalog *cat, const char *id)
{
    for (size_t i = 0; i < cat->n; i++)
        if (strcmp(cat->models[i].cfg->model, id) == 0)
            return true;
    return false;
}

/* One model of a server.models entry or of a model.providers entry; `shared` holds what the
 * provider entry gives all its models (baseURL, apiKey, headers, params), or NULL. */
struct entry_src {
    const char *provider, *id, *display;
    const json_t *m;      /* the object with baseURL, apiKey and options */
    const json_t *shared; /* provider-level object, or NULL */
    const char *where;
};

static int add_model(struct llm_catalog *cat, const struct entry_src *e, llm_env_cb env,
                     void *env_data, char **err)
{
    if (have_id(cat, e->id))
        return 0; /* the first occurrence of an id wins, as the original */
    struct owned *o = cat->owned;
    const struct llm_config *def = cat->models[0].cfg;
    if (cat->n == o->cap) {
        o->cap = o->cap ? o->cap * 2 : 8;
        /* Entries point at their config: grow by moving into a new block, fix the pointers. */
        struct llm_config *nc = xcalloc(o->cap, sizeof(*nc));
        for (size_t i = 1; i < cat->n; i++) {
            nc[i] = o->cfgs[i];
            cat->models[i].cfg = &nc[i];
        }
        xfree(o->cfgs);
        o->cfgs = nc;
        cat->models = xrealloc(cat->models, o->cap * sizeof(*cat->models));
    }
    struct llm_config *cfg = &o->cfgs[cat->n];
    *cfg = *def;
    cfg->headers = NULL;
    cfg->params = NULL;
    cfg->api_version = NULL;
    cfg->reasoning_replay = 0;
    cfg->provider = own_str(o, e->provider);
    cfg->model = own_str(o, e->id);
    if ((e->shared && read_options(cat, cfg, e->shared, err, e->where) < 0) ||
        read_options(cat, cfg, e->m, err, e->where) < 0)
        return -1;
    const json_t *src = json_get_str(e->m, "baseURL") || !e->shared ? e->m : e->shared;
    const char *base = env_value(env, env_data, json_get_str(src, "baseURL"), false);
    const json_t *ksrc = json_get_str(e->m, "apiKey") || !e->shared ? e->m : e->shared;
    const char *key = env_value(env, env_data, json_get_str(ksrc, "apiKey"), true);
    const struct llm_provider *prov = llm_provider_get(e->provider);
    if (base == NULL && def->provider && strcmp(def->provider, e->provider) == 0) {
        /* The default's endpoint, and its key with it (and only with it). */
        base = def->base_url;
        key = key ? key : def->api_key;
    } else if (base == NULL) {
        base = prov->base_url;
        key = key ? key : env_only(env, env_data, prov->key_env);
    }
    cfg->base_url = own_str(o, base);
    cfg->api_key = own_str(o, key);
    struct llm_model *m = &cat->models[cat->n++];
    m->cfg = cfg;
    m->display_name = own_str(o, e->display);
    m->error = base ? NULL
                    : own(o, xasprintf("model '%s' (provider '%s') has no baseURL", e->id,
                                       e->provider));
    return 0;
}

static int read_server_models(struct llm_catalog *cat, const json_t *list, llm_env_cb env,
                              void *env_data, char **err)
{
    if (list == NULL)
        return 0;
    if (!json_is_array(list)) {
        *err = xstrdup("server.models must be an array of {provider, id, ...}");
        return -1;
    }
    size_t i;
    const json_t *m;
    json_array_foreach(list, i, m)
    {
        char where[96];
        snprintf(where, sizeof(where), "server.models[%zu]", i);
        struct entry_src e = {json_get_str(m, "provider"), json_get_str(m, "id"),
                              json_get_str(m, "displayName"), m, NULL, where};
        if (!json_is_object(m) || e.provider == NULL || e.id == NULL || *e.id == '\0') {
            *err = xasprintf("%s needs a \"provider\" and an \"id\" string", where);
            return -1;
        }
        if (add_model(cat, &e, env, env_data, err) < 0)
            return -1;
    }
    return 0;
}

/* The CLI's shape: model.providers [{name, models: [id | {id, displayName}], baseURL, apiKey}]. */
static int read_providers(struct llm_catalog *cat, const json_t *list, llm_env_cb env,
                          void *env_data, char **err)
{
    if (list == NULL)
        return 0;
    if (!json_is_array(list)) {
        *err = xstrdup("model.providers must be an array of {name, models, baseURL, apiKey}");
        return -1;
    }
    size_t i, k;
    const json_t *p, *m;
    json_array_foreach(list, i, p)
    {
        const char *name = json_get_str(p, "name");
        const json_t *models = json_object_get(p, "models");
        if (name == NULL || !json_is_array(models)) {
            *err = xasprintf("model.providers[%zu] needs a \"name\" and a \"models\" array", i);
            return -1;
        }
        json_array_foreach(models, k, m)
        {
            char where[96];
            snprintf(where, sizeof(where), "model.providers[%zu].models[%zu]", i, k);
            const char *id = json_is_string(m) ? json_string_value(m) : json_get_str(m, "id");
            if (id == NULL || *id == '\0') {
                *err = xasprintf("%s must be a model id or {id, displayName}", where);
                return -1;
            }
            struct entry_src e = {name, id, json_get_str(m, "displayName"),
                                  json_is_object(m) ? m : NULL, p, where};
            if (add_model(cat, &e, env, env_data, err) < 0)
                return -1;
        }
    }
    return 0;
}

int llm_catalog_build(struct llm_catalog *cat, const struct llm_config *def,
                      const char *def_display, const json_t *root, llm_env_cb env, void *env_data,
                      char **err)
{
    memset(cat, 0, sizeof(*cat));
    struct owned *o = xcalloc(1, sizeof(*o));
    o->refs = json_array();
    cat->owned = o;
    o->cap = 8;
    o->cfgs = xcalloc(o->cap, sizeof(*o->cfgs));
    cat->models = xcalloc(o->cap, sizeof(*cat->models));
    cat->models[0].cfg = def;
    cat->models[0].display_name = own_str(o, def_display);
    cat->n = 1;
    *err = NULL;
    const json_t *server = json_object_get(root, "server");
    const json_t *model = json_object_get(root, "model");
    if (read_server_models(cat, json_object_get(server, "models"), env, env_data, err) < 0 ||
        read_providers(cat, json_object_get(model, "providers"), env, env_data, err) < 0) {
        llm_catalog_release(cat);
        return -1;
    }
    return 0;
}

/* The default model's own options (model.headers, .params, .apiVersion, .replayReasoning),
 * kept by the catalogue. */
int llm_catalog_default_options(struct llm_catalog *cat, struct llm_config *def,
                                const json_t *model, char **err)
{
    int engine = def->tool_call_engine;
    int rc = json_is_object(model) ? read_options(cat, def, model, err, "model") : 0;
    def->tool_call_engine = engine; /* the default's engine is the top-level toolCallEngine */
    return rc;
}

void llm_catalog_release(struct llm_catalog *cat)
{
    struct owned *o = cat->owned;
    if (o != NULL) {
        for (size_t i = 0; i < o->nptrs; i++)
            xfree(o->ptrs[i]);
        xfree(o->ptrs);
        xfree(o->cfgs);
        json_decref(o->refs);
        xfree(o);
    }
    xfree(cat->models);
    if (installed == cat)
        installed = NULL;
    memset(cat, 0, sizeof(*cat));
}

const struct llm_model *llm_catalog_find(const struct llm_catalog *cat, const char *provider,
                                         const char *id)
{
    for (size_t i = 0; cat && provider && id && i < cat->n; i++) {
        const struct llm_config *c = cat->models[i].cfg;
        if (c->provider && c->model && strcmp(c->provider, provider) == 0 &&
            strcmp(c->model, id) == 0)
            return &cat->models[i];
    }
    return NULL;
}

json_t *llm_model_public(const struct llm_model *m)
{
    return json_pack("{s:s, s:s, s:s*}", "id", m->cfg->model ? m->cfg->model : "", "provider",
                     m->cfg->provider ? m->cfg->provider : "", "displayName", m->display_name);
}

json_t *llm_catalog_public(const struct llm_catalog *cat)
{
    json_t *list = json_array();
    for (size_t i = 0; cat && i < cat->n; i++)
        json_array_append_new(list, llm_model_public(&cat->models[i]));
    return list;
}

void llm_catalog_install(const struct llm_catalog *cat)
{
    installed = cat;
}

const struct llm_catalog *llm_catalog_installed(void)
{
    return installed;
}

void llm_catalog_promote_first(struct llm_catalog *cat, struct llm_config *def)
{
    if (cat->n < 2)
        return;
    *def = *cat->models[1].cfg;
    cat->models[0].display_name = cat->models[1].display_name;
    cat->models[0].error = cat->models[1].error;
    memmove(&cat->models[1], &cat->models[2], (cat->n - 2) * sizeof(*cat->models));
    cat->n--;
}
