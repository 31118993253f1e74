// SPDX-License-Identifier: MIT
// Helpers for the /api/v1 tests: a generic SSE client (any method and path, both framings, early
// disconnect, survives a killed server), the standard single-frame SSE parser used by
// GET /api/v1/sessions/events/stream, session helpers, history normalisation, and the sqlite3 CLI.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { STREAMING_TYPES, get, parseSse, post, sleep } from './server.mjs';

/** The event types that are streamed but never stored (anchor-api.md §4.4). */
export const DELTA_TYPES = new Set([...STREAMING_TYPES, 'final_answer_streaming']);

/** The events a client saw that the server must have stored: all but the streaming deltas. */
export const persisted = (events) => events.filter((e) => e && !DELTA_TYPES.has(e.type));

export const NANOID_RE = /^[A-Za-z0-9_-]{21}$/;

/**
 * Parses standard SSE (`id: <n>\ndata: <json>\n\n`, one frame per event). Comment-only blocks
 * (lines starting with ":") are ignored. Returns { frames: [{id, data, event}], errors, trailing }.
 */
export function parseStdSse(raw) {
    const blocks = raw.split('\n\n');
    const trailing = blocks.pop();
    const frames = [];
    const errors = [];
    for (const b of blocks) {
        const lines = b.split('\n');
        if (lines.every((l) => l.startsWith(':'))) continue;
        if (lines.length !== 2 || !/^id: \d+$/.test(lines[0]) || !lines[1].startsWith('data: ')) {
            errors.push(`not an "id: n\\ndata: json" frame: ${JSON.stringify(b.slice(0, 160))}`);
            continue;
        }
        let event = null;
        try {
            event = JSON.parse(lines[1].slice(6));
        } catch {
            errors.push(`data is not one JSON document: ${lines[1].slice(0, 160)}`);
        }
        frames.push({ id: lines[0].slice(4), data: lines[1].slice(6), event });
    }
    return { frames, errors, trailing };
}

/**
 * Sends a request and reads an SSE answer. opts: { body, headers, parse (parseSse: id block +
 * data block; or parseStdSse), onFrame(frame, out) -> 'disconnect' to drop the connection,
 * timeoutMs }. A non-SSE answer is returned as { status, headers, raw, json, frames: [] }.
 * A connection broken by the server (e.g. kill -9) is not an error: out.readError says what
 * happened and frames hold every complete frame received. Resolves
 * { status, headers, raw, frames, events, errors, disconnected, readError, ended }.
 */
export async function sseRequest(srv, method, urlPath, opts = {}) {
    const { body, headers = {}, parse = parseSse, onFrame, timeoutMs = 15000 } = opts;
    const ctrl = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
        timedOut = true;
        ctrl.abort();
    }, timeoutMs);
    const init = { method, headers: { ...headers }, signal: ctrl.signal };
    if (body !== undefined) {
        init.body = typeof body === 'string' ? body : JSON.stringify(body);
        init.headers['content-type'] = 'application/json';
    }
    const out = { status: 0, raw: '', frames: [], events: [], errors: [], disconnected: false, readError: null, ended: false };
    try {
        const res = await fetch(srv.url + urlPath, init);
        out.status = res.status;
        out.headers = res.headers;
        if (!(res.headers.get('content-type') || '').startsWith('text/event-stream')) {
            out.raw = await res.text();
            try {
                out.json = JSON.parse(out.raw);
            } catch {
                /* not JSON */
            }
            out.ended = true;
            return out;
        }
        const decoder = new TextDecoder();
        let seen = 0;
        try {
            for await (const chunk of res.body) {
                out.raw += decoder.decode(chunk, { stream: true });
                if (!onFrame) continue;
                const complete = out.raw.slice(0, out.raw.lastIndexOf('\n\n') + 2);
                const { frames } = parse(complete);
                let stop = false;
                for (; seen < frames.length && !stop; seen++) {
                    if ((await onFrame(frames[seen], out)) === 'disconnect') stop = true;
                }
                if (stop) {
                    out.disconnected = true;
                    ctrl.abort();
                    break;
                }
            }
            if (!out.disconnected) out.ended = true;
        } catch (e) {
            if (timedOut) throw new Error(`${method} ${urlPath}: stream did not finish within ${timeoutMs} ms; got ${out.raw.slice(-300)}`);
            if (!out.disconnected) out.readError = e;
        }
        out.raw += decoder.decode();
        const complete = out.ended ? out.raw : out.raw.slice(0, out.raw.lastIndexOf('\n\n') + 2);
        Object.assign(out, parse(complete));
        out.events = out.frames.map((f) => f.event);
        return out;
    } catch (e) {
        if (timedOut) throw new Error(`${method} ${urlPath}: no answer within ${timeoutMs} ms`);
        throw e;
    } finally {
        clearTimeout(timer);
    }
}

/** POST /api/v1/sessions/query/stream (seed framing: id block + data block). */
export function streamV1(srv, sessionId, query, opts = {}) {
    return sseRequest(srv, 'POST', '/api/v1/sessions/query/stream', { body: { sessionId, query }, ...opts });
}

/** GET /api/v1/sessions/events/stream; opts.after -> ?after=, opts.lastEventId -> header. */
export function eventStream(srv, sessionId, opts = {}) {
    let p = `/api/v1/sessions/events/stream?sessionId=${encodeURIComponent(sessionId)}`;
    if (opts.after !== undefined) p += `&after=${opts.after}`;
    const headers = {};
    if (opts.lastEventId !== undefined) headers['last-event-id'] = String(opts.lastEventId);
    return sseRequest(srv, 'GET', p, { parse: parseStdSse, headers, ...opts });
}

/** POST /api/v1/sessions/create; asserts 201 and returns the body. */
export async function createV1(srv, body = {}) {
    const r = await post(srv, '/api/v1/sessions/create', body);
    assert.equal(r.status, 201, `create: ${r.status} ${r.text}`);
    return r.json;
}

/** GET /api/v1/sessions/events; asserts 200 and returns the events. */
export async function getEvents(srv, sessionId) {
    const r = await get(srv, `/api/v1/sessions/events?sessionId=${encodeURIComponent(sessionId)}`);
    assert.equal(r.status, 200, `events: ${r.status} ${r.text}`);
    assert.ok(Array.isArray(r.json.events), r.text);
    return r.json.events;
}

/** GET /api/v1/sessions; asserts 200 and returns the list. */
export async function listSessions(srv) {
    const r = await get(srv, '/api/v1/sessions');
    assert.equal(r.status, 200, `list: ${r.status} ${r.text}`);
    return r.json.sessions;
}

/** GET /api/v1/sessions/status; returns {isProcessing, state}. */
export async function getStatus(srv, sessionId) {
    const r = await get(srv, `/api/v1/sessions/status?sessionId=${encodeURIComponent(sessionId)}`);
    assert.equal(r.status, 200, `status: ${r.status} ${r.text}`);
    return r.json.status;
}

/** Polls the status until the session is not processing (and, if given, its stored log ends with agent_run_end). */
export async function waitIdle(srv, sessionId, timeoutMs = 10000) {
    const end = Date.now() + timeoutMs;
    for (;;) {
        const st = await getStatus(srv, sessionId);
        if (!st.isProcessing) return st;
        if (Date.now() > end) throw new Error(`session ${sessionId} still processing after ${timeoutMs} ms`);
        await sleep(50);
    }
}

/** Polls the stored events until pred(events) holds. */
export async function waitEvents(srv, sessionId, pred, timeoutMs = 10000, what = 'stored events') {
    const end = Date.now() + timeoutMs;
    for (;;) {
        const ev = await getEvents(srv, sessionId);
        if (pred(ev)) return ev;
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}; have ${ev.map((e) => e.type).join(',')}`);
        await sleep(50);
    }
}

function textOf(c) {
    if (c === null || c === undefined) return '';
    if (typeof c === 'string') return c;
    if (Array.isArray(c)) return c.map((p) => (p && typeof p.text === 'string' ? p.text : JSON.stringify(p))).join('');
    return JSON.stringify(c);
}

/**
 * A comparable form of chat messages: role, content text (null -> ""), tool calls as
 * {id, name, arguments}, tool_call_id. The system prompt's text is dropped (it may carry the time).
 */
export function normalizeMessages(msgs) {
    return msgs.map((m) => {
        const n = { role: m.role, content: m.role === 'system' ? '<system>' : textOf(m.content) };
        if (Array.isArray(m.tool_calls) && m.tool_calls.length) {
            n.tool_calls = m.tool_calls.map((t) => ({ id: t.id, name: t.function.name, arguments: t.function.arguments }));
        }
        if (m.tool_call_id !== undefined) n.tool_call_id = m.tool_call_id;
        return n;
    });
}

/** Checks that the persisted events of several reads form the stored log exactly once, in order. */
export function assertExactlyOnce(seenPersisted, stored, what = 'stream') {
    const ids = seenPersisted.map((e) => e.id);
    assert.equal(new Set(ids).size, ids.length, `${what}: a stored event was delivered twice`);
    assert.deepEqual(
        seenPersisted.map((e) => JSON.stringify(e)),
        stored.map((e) => JSON.stringify(e)),
        `${what}: delivered stored events differ from the stored log`,
    );
}

// --- sqlite3 CLI ---------------------------------------------------------------------------------

export const HAVE_SQLITE3 = spawnSync('sqlite3', ['-version'], { encoding: 'utf8' }).status === 0;

/** Runs SQL on a database file with the sqlite3 CLI; returns stdout. json: parse `-json` output. */
export function sqlite(dbPath, sql, { json = false } = {}) {
    if (!HAVE_SQLITE3) throw new Error('the sqlite3 CLI is not installed (Debian package sqlite3)');
    const args = json ? ['-bail', '-json', dbPath] : ['-bail', dbPath];
    const r = spawnSync('sqlite3', args, { input: sql, encoding: 'utf8', timeout: 10000 });
    if (r.status !== 0) throw new Error(`sqlite3 failed (${r.status}): ${r.stderr}\nSQL: ${sql.slice(0, 500)}`);
    if (!json) return r.stdout;
    return r.stdout.trim() ? JSON.parse(r.stdout) : [];
}

/** SQL string literal. */
export const sqlStr = (s) => (s === null || s === undefined ? 'NULL' : `'${String(s).replace(/'/g, "''")}'`);
