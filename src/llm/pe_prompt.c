/* SPDX-License-Identifier: MIT */
/* pe_prompt.c -- the request side of the prompt-engineering tool-call engine
 * (agent-tools-llm.md §2.2): the <tool_instruction> block that describes the tools in the
 * system prompt, and the history rewritten so that the model only ever sees text: its own
 * <tool_call> blocks, and tool results as user messages. Pure; declared in pe_parser.h. */
#include <string.h>

#include "../core/buf.h"
#include "../core/util.h"
#include "../core/xalloc.h"
#include "pe_parser.h"

#define PE_PROMPT_MAX (64u * 1024 * 1024)

const char *const pe_stop_sequences[2] = {"</tool_call>", "</tool_call>\n\n"};

/* The layout follows the original's template: numbered rules, an <available_tools> list with a
 * "## name" section per tool and its JSON Schema in a json fence, and the exact call format. */
static const char instruction_head[] = "<tool_instruction>\n"
                                       "  1. You have access to the following tools:\n"
                                       "\n"
                                       "  <available_tools>\n"
                                       "  ";

static const char instruction_tail[] =
    "\n"
    "  </available_tools>\n"
    "\n"
    "  2. To call a tool, reply in exactly this format. The content of the tag must be valid "
    "JSON, and \"parameters\" must match the tool's Parameters JSON Schema:\n"
    "\n"
    "  <tool_call>\n"
    "  {\n"
    "    \"name\": \"tool_name\",\n"
    "    \"parameters\": {\n"
    "      \"param1\": \"value1\",\n"
    "      \"param2\": \"value2\"\n"
    "    }\n"
    "  }\n"
    "  </tool_call>\n"
    "\n"
    "  3. To give a final answer without calling a tool, reply in plain conversational text, "
    "WITHOUT the tool_call format.\n"
    "  4. WARNING:\n"
    "    4.1. Only call tools listed in <available_tools>.\n"
    "    4.2. After writing </tool_call>, STOP at once and wait for the tool result, which "
    "arrives in the next turn. Do not write anything after it.\n"
    "    4.3. Tool results are given to you in a user message. Use them to continue your work "
    "or to give the final answer.\n"
    "</tool_instruction>\n";

static void describe_tool(struct buf *b, const json_t *fn)
{
    const char *name = json_get_str(fn, "name");
    const char *desc = json_get_str(fn, "description");
    const json_t *schema = json_object_get(fn, "parameters");
    char *js = schema ? json_dump_compact(schema, NULL) : xstrdup("{}");
    buf_appendf(b, "## %s\n\nDescription: %s\n\nParameters JSON Schema:\n```json\n%s\n```\n\n",
                name, desc ? desc : "", js);
    xfree(js);
}

char *pe_tool_instruction(const json_t *tools)
{
    struct buf b;
    buf_init(&b, PE_PROMPT_MAX);
    size_t i, n = 0;
    const json_t *t;
    json_array_foreach(tools, i, t)
    {
        const json_t *fn = json_object_get(t, "function");
        if (json_get_str(fn, "name") == NULL)
            continue;
        buf_appends(&b, n++ ? "\n\n" : instruction_head);
        describe_tool(&b, fn);
    }
    if (n > 0)
        buf_appends(&b, instruction_tail);
    return buf_detach(&b, NULL);
}

/* ---- history ---------------------------------------------------------------------------- */

/* The text of a content value: a string, or its text parts joined with `sep`. */
static void content_text(struct buf *b, const json_t *content, const char *sep)
{
    if (json_is_string(content)) {
        buf_appends(b, json_string_value(content));
        return;
    }
    size_t i;
    const json_t *part;
    bool first = true;
    json_array_foreach(content, i, part)
    {
        const char *type = json_get_str(part, "type");
        const char *t = json_get_str(part, "text");
        if (type == NULL || t == NULL || strcmp(type, "text") != 0)
            continue;
        if (!first)
            buf_appends(b, sep);
        buf_appends(b, t);
        first = false;
    }
}

static json_t *text_message(const char *role, const struct buf *b)
{
    return json_pack("{s:s, s:o}", "role", role, "content", json_string_lossy(b->data, b->len));
}

/* Writes a call back in the format the model was told to use. */
static void append_call_text(struct buf *b, const json_t *tc)
{
    const json_t *fn = json_object_get(tc, "function");
    const char *name = json_get_str(fn, "name");
    const char *args = json_get_str(fn, "arguments");
    json_t *params = args ? json_loads(args, 0, NULL) : NULL;
    json_t *call = json_pack("{s:s, s:o}", "name", name ? name : "", "parameters",
                             json_is_object(params) ? json_incref(params) : json_object());
    json_decref(params);
    char *js = json_dump_compact(call, NULL);
    json_decref(call);
    buf_appendf(b, "<tool_call>\n%s\n</tool_call>", js);
    xfree(js);
}

/* Remembers the tool name of each call id, for the result messages. */
static void note_call_names(const json_t *msg, json_t *names)
{
    size_t i;
    const json_t *tc;
    json_array_foreach(json_object_get(msg, "tool_calls"), i, tc)
    {
        const char *id = json_get_str(tc, "id");
        const char *name = json_get_str(json_object_get(tc, "function"), "name");
        if (id && name)
            json_object_set_new(names, id, json_string(name));
    }
}

/* An assistant turn with tool calls goes back as the model's own text. The agent stores the
 * raw text (llm_result.raw_content), which already holds the <tool_call> blocks; when it does
 * not (history from the native engine), the blocks are written from tool_calls. */
static json_t *assistant_message(const json_t *msg)
{
    const json_t *calls = json_object_get(msg, "tool_calls");
    size_t i;
    const json_t *tc;
    if (json_array_size(calls) == 0)
        return json_incref((json_t *)msg);
    struct buf b;
    buf_init(&b, PE_PROMPT_MAX);
    content_text(&b, json_object_get(msg, "content"), "");
    if (strstr(buf_str(&b), "<tool_call>") == NULL) {
        json_array_foreach(calls, i, tc)
        {
            if (b.len > 0)
                buf_appends(&b, i == 0 ? "\n\n" : "\n");
            append_call_text(&b, tc);
        }
    }
    json_t *out = text_message("assistant", &b);
    buf_release(&b);
    return out;
}

static bool is_text_part(const json_t *part)
{
    const char *type = json_get_str(part, "type");
    return type != NULL && strcmp(type, "text") == 0;
}

/* "Tool: <name>\nResult:\n<text>"; with images, a parts array of that text and the images. */
static json_t *tool_message(const json_t *msg, const json_t *names)
{
    const char *id = json_get_str(msg, "tool_call_id");
    const char *name = id ? json_get_str(names, id) : NULL;
    if (name == NULL)
        name = json_get_str(msg, "name");
    struct buf b;
    buf_init(&b, PE_PROMPT_MAX);
    buf_appendf(&b, "Tool: %s\nResult:\n", name ? name : "unknown");
    const json_t *content = json_object_get(msg, "content");
    content_text(&b, content, "");
    json_t *images = json_array();
    size_t i;
    const json_t *part;
    json_array_foreach(content, i, part)
    {
        if (!is_text_part(part))
            json_array_append(images, (json_t *)part);
    }
    json_t *out = text_message("user", &b);
    buf_release(&b);
    if (json_array_size(images) > 0) {
        json_t *parts =
            json_pack("[{s:s, s:O}]", "type", "text", "text", json_object_get(out, "content"));
        json_array_extend(parts, images);
        json_object_set_new(out, "content", parts);
    }
    json_decref(images);
    return out;
}

/* The native engine puts a tool result's images in a user message of their own right after
 * it; this engine puts them in the result's message. True for such an images-only message. */
static bool images_only(const json_t *msg)
{
    const json_t *content = json_object_get(msg, "content");
    if (!json_is_array(content) || json_array_size(content) == 0)
        return false;
    size_t i;
    const json_t *part;
    json_array_foreach(content, i, part)
    {
        if (is_text_part(part))
            return false;
    }
    return true;
}

static void merge_images(json_t *tool_msg, const json_t *msg)
{
    json_t *content = json_object_get(tool_msg, "content");
    if (json_is_string(content)) {
        json_t *parts = json_pack("[{s:s, s:O}]", "type", "text", "text", content);
        json_object_set_new(tool_msg, "content", parts);
        content = parts;
    }
    json_array_extend(content, json_object_get(msg, "content"));
}

static json_t *system_message(const json_t *msg, const char *instruction)
{
    struct buf b;
    buf_init(&b, PE_PROMPT_MAX);
    content_text(&b, json_object_get(msg, "content"), "\n");
    buf_appendf(&b, "\n\n%s", instruction);
    json_t *out = text_message("system", &b);
    buf_release(&b);
    return out;
}

json_t *pe_prepare_messages(const json_t *messages, const json_t *tools)
{
    char *instruction = pe_tool_instruction(tools);
    json_t *out = pe_rewrite_history(messages, instruction, NULL);
    xfree(instruction);
    return out;
}

json_t *pe_rewrite_history(const json_t *messages, const char *instruction,
                           json_t *(*assistant)(const json_t *msg))
{
    bool placed = instruction[0] == '\0';
    json_t *out = json_array();
    json_t *names = json_object(); /* tool_call_id -> tool name */
    const char *prev_role = "";
    size_t i;
    const json_t *msg;
    json_array_foreach(messages, i, msg)
    {
        const char *role = json_get_str(msg, "role");
        role = role ? role : "";
        if (strcmp(role, "system") == 0 && !placed) {
            json_array_append_new(out, system_message(msg, instruction));
            placed = true;
        } else if (strcmp(role, "assistant") == 0) {
            note_call_names(msg, names);
            json_array_append_new(out, assistant ? assistant(msg) : assistant_message(msg));
        } else if (strcmp(role, "tool") == 0) {
            json_array_append_new(out, tool_message(msg, names));
        } else if (strcmp(role, "user") == 0 && strcmp(prev_role, "tool") == 0 &&
                   images_only(msg)) {
            merge_images(json_array_get(out, json_array_size(out) - 1), msg);
        } else {
            json_array_append(out, (json_t *)msg);
        }
        prev_role = role;
    }
    if (!placed)
        json_array_insert_new(out, 0,
                              json_pack("{s:s, s:s}", "role", "system", "content", instruction));
    json_decref(names);
    return out;
}
