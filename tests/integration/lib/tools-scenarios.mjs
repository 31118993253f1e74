// SPDX-License-Identifier: MIT
// A generic scripted-model scenario for the built-in tool tests, and helpers around it. The
// query marker carries the whole script: `[[scenario:toolseq c=<base64url JSON>]]`, where the
// JSON is a list of steps; step k (the k-th LLM call of the run) asks for the tool calls of
// steps[k], and once the steps are used up the model answers quoting the last tool message it
// received. Also: what a tool message should look like, and a /proc scan for leftover
// processes.

import fs from 'node:fs';
import * as fakeOpenAI from './fake-openai.mjs';
import { createSession, ofType, q, streamQuery } from './server.mjs';

let registered = false;

/**
 * Registers the `toolseq` scenario (idempotent). A step is a list of calls [name, args]; args is
 * an object (sent as its JSON text) or a string (sent as is, e.g. broken JSON).
 */
export function addToolScenarios() {
    if (registered) return;
    registered = true;
    fakeOpenAI.addScenarios({
        toolseq(s, a) {
            const steps = JSON.parse(Buffer.from(a.params.c || 'W10', 'base64url').toString('utf8'));
            if (a.step < steps.length) s.tools(steps[a.step]);
            else s.text(fakeOpenAI.toolFinalText(a.lastTool === null ? '(none)' : a.lastTool));
        },
    });
}

/**
 * The query for `toolseq`. steps: a list whose items are one call [name, args] or, for several
 * calls in one assistant message, { calls: [[name, args], ...] }.
 */
export function toolQuery(steps, text = 'use the tools') {
    const norm = steps.map((st) => (Array.isArray(st) ? [st] : st.calls));
    return q(`toolseq c=${Buffer.from(JSON.stringify(norm)).toString('base64url')}`, text);
}

/** The final answer `toolseq` gives when the last tool message it received was `toolText`. */
export const finalText = (toolText) => fakeOpenAI.toolFinalText(toolText);

/**
 * What the original's native engine puts into the role:"tool" message for a tool result
 * without images: a string as is, anything else JSON.stringify(x, null, 2) (agent-tools-llm.md
 * §2.4; the commands' MCP-style part arrays are sent that way, extra fields included).
 */
export function toolMessageText(content) {
    return typeof content === 'string' ? content : JSON.stringify(content, null, 2);
}

/**
 * Runs one scripted conversation in a new session of `srv` over the SSE stream route. Returns
 * { sid, query, out, events, calls (tool_call events), results (tool_result events), requests
 * (what the fake model received for this query, in order), final (last assistant_message) }.
 */
export async function runTools(srv, fake, steps, { text, onEvent, timeoutMs = 15000, sid } = {}) {
    const session = sid || (await createSession(srv));
    const query = toolQuery(steps, text);
    const out = await streamQuery(srv, session, query, { onEvent, timeoutMs });
    const events = out.events;
    return {
        sid: session,
        ws: srv.workspace,
        query,
        out,
        events,
        calls: ofType(events, 'tool_call'),
        results: ofType(events, 'tool_result'),
        requests: fake.requestsMatching(query),
        final: ofType(events, 'assistant_message').at(-1),
    };
}

/** The role:"tool" message with `toolCallId` in the request record `rec`, or undefined. */
export function toolMessageIn(rec, toolCallId) {
    return rec.body.messages.find((m) => m.role === 'tool' && m.tool_call_id === toolCallId);
}

/** Names of the tools the model was offered in request record `rec`. */
export function offeredTools(rec) {
    return (rec.body.tools || []).map((t) => t.function.name);
}

/** A unique word to tag the processes a test starts, so /proc can tell them apart. */
export function uniqueMarker(prefix = 'tarsit') {
    return `${prefix}${process.pid}x${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
}

/**
 * pids of live processes whose command line contains `marker` (read from /proc/<pid>/cmdline;
 * zombies have an empty one and do not count). Our own pid is skipped.
 */
export function pidsWithMarker(marker) {
    const out = [];
    for (const name of fs.readdirSync('/proc')) {
        if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
        let cmd;
        try {
            cmd = fs.readFileSync(`/proc/${name}/cmdline`, 'utf8');
        } catch {
            continue; /* gone meanwhile */
        }
        if (cmd.includes(marker)) out.push({ pid: Number(name), cmdline: cmd.split('\0').filter(Boolean).join(' ') });
    }
    return out;
}

/** Kills (SIGKILL) the processes pidsWithMarker finds: cleanup after a failed test only. */
export function killMarked(marker) {
    for (const { pid } of pidsWithMarker(marker)) {
        try {
            process.kill(pid, 'SIGKILL');
        } catch {
            /* already gone */
        }
    }
}

const PATH_KEYS = {
    write_file: ['path'], read_file: ['path'], edit_file: ['path'], create_directory: ['path'],
    list_directory: ['path'], directory_tree: ['path'], search_files: ['path'], get_file_info: ['path'],
    move_file: ['source', 'destination'], run_command: ['cwd'], run_script: ['cwd'],
};

/**
 * The arguments as the tool_call event shows them: the original's path-rewriting hook
 * (anchor-api.md §6.4) resolves non-empty relative paths against the workspace first.
 */
export function rewrittenArgs(name, args, ws) {
    if (!args || typeof args !== 'object' || Array.isArray(args)) return args;
    const out = { ...args };
    const fix = (p) => (typeof p === 'string' && p !== '' && !p.startsWith('/')
        ? (p === '.' ? ws : `${ws}/${p.replace(/^(\.\/)+/, '')}`) : p);
    for (const k of PATH_KEYS[name] || []) if (k in out) out[k] = fix(out[k]);
    if (name === 'read_multiple_files' && Array.isArray(out.paths)) out.paths = out.paths.map(fix);
    return out;
}
