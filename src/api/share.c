/* SPDX-License-Identifier: MIT */
/* share.c -- F9 generate-summary (one short model call) and F10 share (a self-contained HTML
 * replay of the stored events, used when no share provider is configured). */
#include <string.h>

#include "../core/buf.h"
#include "../core/log.h"
#include "../core/util.h"
#include "../core/xalloc.h"
#include "../store/store.h"
#include "api_int.h"

/* ---- F9 ---- */

#define SUMMARY_PROMPT                                                                         \
    "You name conversations. Read the conversation and answer with JSON only, in the form "   \
    "{\"title\": \"...\"}, where the title has at most six words and no final punctuation."

struct summary {
    struct http_req *req;
    struct llm_request *llm;
    struct llm_config cfg;
};

static void on_summary_done(void *data, int status, const struct llm_result *res,
                            const char *errmsg)
{
    struct summary *sm = data;
    http_req_on_close(sm->req, NULL, NULL); /* answering frees the request */
    if (status != LLM_OK) {
        api__error2(sm->req, 500, "Failed to generate summary", errmsg);
    } else {
        /* Models often wrap the JSON in a code fence: take the outermost braces. */
        const char *open = strchr(res->content, '{');
        const char *close = strrchr(res->content, '}');
        json_t *j = open && close && close > open
                        ? json_loadb(open, (size_t)(close - open + 1), 0, NULL)
                        : NULL;
        const char *title = json_get_str(j, "title");
        json_t *out = json_pack("{s:s, s:s, s:s}", "summary",
                                title && *title ? title : "Untitled Conversation", "model",
                                sm->cfg.model, "provider", sm->cfg.provider);
        http_respond_json(sm->req, 200, out);
        json_decref(out);
        json_decref(j);
    }
    xfree(sm);
}

static void on_summary_close(struct http_req *req, void *data)
{
    struct summary *sm = data;
    llm_request_cancel(sm->llm);
    xfree(sm);
}

/* The conversation as one user message: roles and text, capped. */
static json_t *transcript(const json_t *messages)
{
    struct buf b;
    buf_init(&b, 64 << 10);
    size_t i;
    json_t *m;
    json_array_foreach(messages, i, m)
    {
        const char *role = json_get_str(m, "role");
        const json_t *c = json_object_get(m, "content");
        char *text = json_is_string(c) ? NULL : json_dump_compact(c, NULL);
        buf_appendf(&b, "%s: %s\n", role ? role : "user", text ? text : json_string_value(c));
        xfree(text);
    }
    json_t *j = json_pack("{s:s, s:o}", "role", "user", "content",
                          json_string_lossy(b.data ? b.data : "", b.len));
    buf_release(&b);
    return j;
}

void api__generate_summary(struct http_req *req, struct agent_session *s, const json_t *body)
{
    const json_t *messages = json_object_get(body, "messages");
    if (!json_is_array(messages) || json_array_size(messages) == 0) {
        http_respond_error(req, 400, "Messages are required");
        return;
    }
    struct summary *sm = xcalloc(1, sizeof(*sm));
    sm->req = req;
    sm->cfg = *api__opts->llm_cfg;
    sm->cfg.temperature = 0.3;
    sm->cfg.max_tokens = 64;
    sm->cfg.thinking = -1;
    json_t *msgs = json_pack("[{s:s, s:s}, o]", "role", "system", "content", SUMMARY_PROMPT,
                     transcript(messages));
    static const struct llm_callbacks cbs = {.on_done = on_summary_done};
    int rc = sm->cfg.base_url
                 ? llm_request_start(api__opts->llm, &sm->cfg, msgs, NULL, &cbs, sm, &sm->llm)
                 : -1;
    json_decref(msgs);
    if (rc < 0) {
        api__error2(req, 500, "Failed to generate summary", "no model configured");
        xfree(sm);
        return;
    }
    http_req_on_close(req, on_summary_close, sm);
}

/* ---- F10 ---- */

/* JSON for inside a <script>: "<", ">" and "/" escaped so that nothing can end the element. */
static void script_json(struct buf *b, const json_t *j)
{
    char *text = json_dump_compact(j, NULL);
    for (const char *p = text; *p; p++) {
        if (*p == '<')
            buf_append_lit(b, "\\u003C");
        else if (*p == '>')
            buf_append_lit(b, "\\u003E");
        else if (*p == '/')
            buf_append_lit(b, "\\/");
        else
            buf_appendc(b, *p);
    }
    xfree(text);
}

static int collect(void *data, int64_t pos, const char *json, size_t len)
{
    json_t *ev = json_loadb(json, len, 0, NULL);
    if (ev)
        json_array_append_new(data, ev);
    return 0;
}

static const char replay_page[] =
    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    "<title>Agent TARS replay</title><style>"
    "body{font:15px/1.5 system-ui,sans-serif;max-width:860px;margin:2rem auto;padding:0 1rem;"
    "color:#1b1b1f;background:#fff}@media(prefers-color-scheme:dark){body{color:#e6e6e9;"
    "background:#141417}.ev{border-color:#333}}.ev{border:1px solid #ddd;border-radius:8px;"
    "padding:.6rem .9rem;margin:.6rem 0;white-space:pre-wrap;overflow-wrap:anywhere}"
    ".user_message{border-left:4px solid #3b82f6}.assistant_message{border-left:4px solid #10b981}"
    ".tool_call,.tool_result{font-family:ui-monospace,monospace;font-size:13px}"
    ".system{border-left:4px solid #f59e0b}.meta{opacity:.6;font-size:12px}</style></head>"
    "<body><h1 id=\"title\">Agent TARS replay</h1><main id=\"events\"></main><script>\n";

static const char replay_script[] =
    "\n(function(){var s=window.AGENT_SESSION_DATA||{},ev=window.AGENT_EVENT_STREAM||[];"
    "var m=s.metadata||{};document.getElementById('title').textContent=m.name||'Agent TARS replay';"
    "var root=document.getElementById('events');ev.forEach(function(e){var t=e.type,txt;"
    "if(t==='user_message'||t==='assistant_message'||t==='assistant_thinking_message')"
    "txt=typeof e.content==='string'?e.content:JSON.stringify(e.content);"
    "else if(t==='tool_call')txt=e.name+' '+JSON.stringify(e.arguments);"
    "else if(t==='tool_result')txt=e.name+' -> '+(typeof e.content==='string'?e.content:"
    "JSON.stringify(e.content));else if(t==='system')txt=e.level+': '+e.message;else return;"
    "var d=document.createElement('div');d.className='ev '+t;var h=document.createElement('div');"
    "h.className='meta';h.textContent=t;d.appendChild(h);d.appendChild(document.createTextNode(txt));"
    "root.appendChild(d);});})();\n</script></body></html>\n";

void api__share(struct http_req *req, struct agent_session *s)
{
    json_t *info = store_session_get(api__opts->store, agent_session_id(s));
    json_t *events = json_array();
    if (info == NULL ||
        store_events_load(api__opts->store, agent_session_id(s), 0, 0, collect, events) < 0) {
        api__error2(req, 500, info ? "Failed to share session" : "Session not found",
                    store_last_error(api__opts->store));
        json_decref(info);
        json_decref(events);
        return;
    }
    struct buf b;
    buf_init(&b, (size_t)-1);
    buf_append(&b, replay_page, sizeof(replay_page) - 1);
    buf_append_lit(&b, "window.AGENT_REPLAY_MODE=true;\nwindow.AGENT_SESSION_DATA=");
    script_json(&b, info);
    buf_append_lit(&b, ";\nwindow.AGENT_EVENT_STREAM=");
    script_json(&b, events);
    buf_append_lit(&b, ";");
    buf_append(&b, replay_script, sizeof(replay_script) - 1);
    json_t *j = json_pack("{s:b, s:s, s:s}", "success", 1, "html", b.data, "sessionId",
                          agent_session_id(s));
    http_respond_json(req, 200, j);
    json_decref(j);
    buf_release(&b);
    json_decref(info);
    json_decref(events);
}
