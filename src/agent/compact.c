/* SPDX-License-Identifier: MIT */
/* compact.c -- context compaction. Before a model call whose prompt is estimated (four
 * characters a token) above context.maxPromptTokens, the turns before the current one are
 * replaced by a summary that one extra model call writes; tool results are cut first so that the
 * summary request itself stays small. The system prompt and the current turn stay whole. The
 * stored events keep the whole history (the UI shows everything); a context_compacted event
 * records the summary so that a restart rebuilds the same compacted history. A provider error
 * that says the context is too long triggers one forced compaction and a retry. */
#include <string.h>
#include <strings.h>

#include "../core/log.h"
#include "../core/util.h"
#include "../core/xalloc.h"
#include "run_int.h"

#define SUMMARY_PROMPT                                                                          \
    "You compact conversations. Summarize the conversation below for the assistant that will "  \
    "continue it: the user's goals and requests, decisions made, files and commands involved, " \
    "results obtained and anything still open. Be concise and factual; keep names, paths and " \
    "numbers exact. Answer with the summary only."
#define SUMMARY_HEAD "[Summary of the earlier conversation]\n"
#define TOOL_RESULT_CUT 2000        /* bytes of each tool result in the summary request */
#define TRANSCRIPT_CAP (256 << 10)  /* bytes of the whole summary request */

/* The message the current turn starts with: the last user message that carries text (user
 * messages that only hold a tool's images belong to the turn). */
static size_t current_turn(const json_t *history)
{
    for (size_t i = json_array_size(history); i-- > 0;) {
        const json_t *m = json_array_get(history, i);
        const char *role = json_get_str(m, "role");
        if (role == NULL || strcmp(role, "user") != 0)
            continue;
        const json_t *c = json_object_get(m, "content");
        if (json_is_string(c))
            return i;
        size_t k;
        json_t *part;
        json_array_foreach(c, k, part) if (json_get_str(part, "text")) return i;
    }
    return 0;
}

static void append_text(struct buf *b, const json_t *content, size_t cut)
{
    size_t start = b->len;
    if (json_is_string(content)) {
        buf_append(b, json_string_value(content), json_string_length(content));
    } else {
        size_t k;
        json_t *part;
        json_array_foreach(content, k, part)
        {
            const char *t = json_get_str(part, "text");
            buf_appends(b, t ? t : "[image]");
            buf_appendc(b, '\n');
        }
    }
    if (cut && b->len - start > cut) {
        b->len = start + cut;
        buf_appends(b, " [...cut]");
    }
}

/* "role: text" lines of the older messages, tool results cut, the whole capped. */
static char *transcript(const json_t *history, size_t n)
{
    struct buf b;
    buf_init(&b, (size_t)-1);
    for (size_t i = 0; i < n && b.len < TRANSCRIPT_CAP; i++) {
        const json_t *m = json_array_get(history, i);
        const char *role = json_get_str(m, "role");
        bool tool = role && strcmp(role, "tool") == 0;
        buf_appendf(&b, "%s: ", role ? role : "?");
        append_text(&b, json_object_get(m, "content"), tool ? TOOL_RESULT_CUT : 0);
        size_t k;
        json_t *call;
        json_array_foreach(json_object_get(m, "tool_calls"), k, call)
        {
            const json_t *fn = json_object_get(call, "function");
            buf_appendf(&b, "\n[tool call %s %.*s]", json_get_str(fn, "name") ? json_get_str(fn, "name") : "?",
                        TOOL_RESULT_CUT,
                        json_get_str(fn, "arguments") ? json_get_str(fn, "arguments") : "");
        }
        buf_appends(&b, "\n\n");
    }
    if (b.len > TRANSCRIPT_CAP)
        b.len = TRANSCRIPT_CAP;
    char *out = xstrndup(b.data ? b.data : "", b.len);
    buf_release(&b);
    return out;
}

void agent__compact_apply(json_t *history, size_t kept, const char *summary)
{
    size_t n = json_array_size(history);
    if (kept > n)
        kept = n;
    json_t *rest = json_array();
    for (size_t i = n - kept; i < n; i++)
        json_array_append(rest, json_array_get(history, i));
    json_array_clear(history);
    /* The summary goes in front of the first kept user message, so that the roles still
     * alternate as every provider wants. */
    json_t *first = json_deep_copy(json_array_get(rest, 0));
    json_t *c = json_object_get(first, "content");
    char *head = xasprintf(SUMMARY_HEAD "%s\n\n[The conversation continues]\n", summary);
    if (json_is_string(c)) {
        char *t = xasprintf("%s%s", head, json_string_value(c));
        json_object_set_new(first, "content", json_string_lossy(t, strlen(t)));
        xfree(t);
    } else if (json_is_array(c)) {
        json_array_insert_new(c, 0, json_pack("{s:s, s:o}", "type", "text", "text",
                                              json_string_lossy(head, strlen(head))));
    } else {
        json_decref(first);
        first = json_pack("{s:s, s:o}", "role", "user", "content",
                          json_string_lossy(head, strlen(head)));
        json_array_append_new(history, first);
        first = NULL;
    }
    xfree(head);
    if (first) {
        json_array_append_new(history, first);
        json_array_remove(rest, 0);
    }
    json_array_extend(history, rest);
    json_decref(rest);
}

/* ---- the summary call ---- */

static void on_summary_content(void *data, const char *p, size_t len)
{
    struct run *r = data;
    buf_append(&r->compact_text, p, len);
}

static void on_summary_done(void *data, int status, const struct llm_result *res,
                            const char *errmsg)
{
    struct run *r = data;
    r->llm = NULL;
    r->compacting = false;
    if (status != LLM_OK || r->compact_text.len == 0) {
        log_warn("sess %s: context compaction failed (%s); going on without it", r->s->id,
                 errmsg ? errmsg : "empty summary");
        agent__next_iteration(r);
        return;
    }
    size_t n = json_array_size(r->s->history);
    size_t kept = n - r->compact_from;
    char *summary = xstrndup(r->compact_text.data, r->compact_text.len);
    json_t *usage = agent__usage_new(res->usage, r->compact_prompt_chars, r->compact_text.len);
    agent__usage_add(r->usage, usage);
    if (r->s->usage == NULL)
        r->s->usage = json_object();
    agent__usage_add(r->s->usage, usage);
    agent__compact_apply(r->s->history, kept, summary);
    json_t *ev = agent__event_new("context_compacted");
    json_object_set_new(ev, "removedMessages", json_integer((json_int_t)r->compact_from));
    json_object_set_new(ev, "keptMessages", json_integer((json_int_t)kept));
    json_object_set(ev, "summaryTokens", json_object_get(usage, "completionTokens"));
    json_object_set_new(ev, "summary", json_string_lossy(summary, strlen(summary)));
    json_object_set_new(ev, "usage", usage);
    agent__emit_new(r->s, ev);
    log_info("sess %s: context compacted: %zu messages summarized, %zu kept", r->s->id,
             r->compact_from, kept);
    xfree(summary);
    agent__next_iteration(r);
}

static const struct llm_callbacks summary_cbs = {
    .on_content = on_summary_content,
    .on_done = on_summary_done,
};

bool agent__compact_start(struct run *r, size_t prompt_chars, bool force)
{
    uint64_t max = agent__opts.max_prompt_tokens;
    if (r->compacted || (!force && (max == 0 || prompt_chars / 4 <= max)))
        return false;
    size_t from = current_turn(r->s->history);
    if (from == 0)
        return false; /* nothing before the current turn: the prompt stays as it is */
    r->compacted = true; /* once per model call */
    char *text = transcript(r->s->history, from);
    json_t *messages = json_pack("[{s:s, s:s}, {s:s, s:o}]", "role", "system", "content",
                                 SUMMARY_PROMPT, "role", "user", "content",
                                 json_string_lossy(text, strlen(text)));
    xfree(text);
    r->compact_prompt_chars = json_dumpb(messages, NULL, 0, JSON_COMPACT);
    r->compact_from = from;
    buf_reset(&r->compact_text);
    int rc = llm_request_start(agent__opts.llm, r->cfg, messages, NULL, &summary_cbs,
                               r, &r->llm);
    json_decref(messages);
    if (rc < 0)
        return false;
    r->compacting = true;
    return true;
}

bool agent__context_error(const char *msg)
{
    static const char *pats[] = {"context length", "context_length", "maximum context",
                                 "too many tokens", "prompt is too long", "context window"};
    for (size_t i = 0; msg && i < sizeof(pats) / sizeof(pats[0]); i++)
        if (strcasestr(msg, pats[i]))
            return true;
    return false;
}
