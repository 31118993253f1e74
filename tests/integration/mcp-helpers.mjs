// SPDX-License-Identifier: MIT
// Shared by the mcp-*.test.mjs files (not a test file itself): a scripted-model scenario that
// calls any tool with any arguments, a config file writer, and helpers to find the MCP server
// processes the binary started (from its log) and to check they are gone.

import fs from 'node:fs';
import path from 'node:path';
import * as fakeOpenAI from './lib/fake-openai.mjs';
import { q, tempDir } from './lib/server.mjs';

/**
 * Registers the `mcpcall` scenario: step k (0-based) calls the tool of marker param
 * `tool` (k = 0), `tool2`, `tool3`... with the JSON arguments of `args`, `args2`... (base64url),
 * then answers quoting the last tool message. Build the query with mcpQuery().
 */
export function addMcpScenario() {
    fakeOpenAI.addScenarios({
        mcpcall(s, a) {
            const sfx = a.step === 0 ? '' : String(a.step + 1);
            const tool = a.params[`tool${sfx}`];
            if (tool) {
                const raw = a.params[`args${sfx}`];
                const args = raw ? JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) : {};
                s.tools([[tool, args]]);
            } else {
                s.text(fakeOpenAI.toolFinalText(a.lastTool === null ? '(none)' : a.lastTool));
            }
        },
    });
}

/** The query for `mcpcall`: calls = [[tool, args], ...] made one after another. */
export function mcpQuery(calls, text = 'use the tools') {
    const words = calls.map(([tool, args], i) => {
        const sfx = i === 0 ? '' : String(i + 1);
        return `tool${sfx}=${tool} args${sfx}=${Buffer.from(JSON.stringify(args || {})).toString('base64url')}`;
    });
    return q(`mcpcall ${words.join(' ')}`, text);
}

/** Writes a JSON config file into a fresh temporary directory and returns its path. */
export function writeConfig(obj) {
    const file = path.join(tempDir('tars-mcp-cfg-'), 'config.json');
    fs.writeFileSync(file, JSON.stringify(obj, null, 2));
    return file;
}

/** What the original's native engine puts in the role:"tool" message for an MCP result. */
export function toolMessageText(content) {
    return typeof content === 'string' ? content : JSON.stringify(content, null, 2);
}

/**
 * The requests of the conversation of `query`. Not fake.requestsMatching: that looks at the last
 * user message only, and an image tool result adds a user message (the images) after the query.
 */
export function requestsOf(fake, query) {
    return fake.requests.filter((r) => r.body && Array.isArray(r.body.messages) && r.body.messages.some((m) => m.role === 'user' && typeof m.content === 'string' && m.content.includes(query)));
}

/** The tool messages the fake model received in its last request for `query`. */
export function toolMessages(fake, query) {
    const last = requestsOf(fake, query).at(-1);
    return last ? last.body.messages.filter((m) => m.role === 'tool') : [];
}

/** pids of the MCP servers the binary started, from its log ("mcp server 'x' started: ... (pid N)"). */
export function mcpPids(srv) {
    const out = {};
    for (const m of srv.stderr.matchAll(/mcp server '([^']+)' started: .*\(pid (\d+)\)/g)) {
        (out[m[1]] ||= []).push(Number(m[2]));
    }
    return out;
}

export function alive(pid) {
    try {
        process.kill(pid, 0);
        return true;
    } catch {
        return false;
    }
}

/** Every pid of `pids` (an array) is gone within timeoutMs. */
export async function allGone(pids, timeoutMs = 5000) {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
        if (!pids.some(alive)) return true;
        await new Promise((r) => setTimeout(r, 50));
    }
    return !pids.some(alive);
}
