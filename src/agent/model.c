/* SPDX-License-Identifier: MIT */
/* model.c -- which model a session's next run talks to (issue 18): the entry of the model
 * catalogue (llm.h) named by the session's stored metadata.modelConfig {provider, id}, set by
 * POST /api/v1/sessions/model, else the configured default. Read from the store at each run
 * start, so the choice holds across restarts and for every route that starts a run; the run
 * keeps the config it started with (catalogue entries live as long as the process). */
#include <string.h>

#include "../core/util.h"
#include "../store/store.h"
#include "agent_int.h"

const struct llm_config *agent__session_model(struct agent_session *s)
{
    const struct llm_catalog *cat = llm_catalog_installed();
    const struct llm_config *def = agent__opts.llm_cfg;
    if (cat == NULL || cat->n < 2 || agent__opts.store == NULL || s == NULL)
        return def; /* nothing to choose from */
    json_t *info = store_session_get(agent__opts.store, s->id);
    const json_t *mc = json_object_get(json_object_get(info, "metadata"), "modelConfig");
    const char *id = json_get_str(mc, "id");
    if (id == NULL)
        id = json_get_str(mc, "modelId"); /* the August 2025 shape (anchor-api.md §3.6) */
    const struct llm_model *m = llm_catalog_find(cat, json_get_str(mc, "provider"), id);
    json_decref(info);
    /* Entry 0 is the default itself; an unknown or removed model falls back to it. */
    return m && m != &cat->models[0] ? m->cfg : def;
}
