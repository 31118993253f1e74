// SPDX-License-Identifier: MIT
// Starts and stops the server binary for the integration tests, and offers small HTTP clients:
// JSON requests, an SSE reader that checks the id/data framing, and raw-socket requests for the
// HTTP edge cases (pipelining, slowloris, malformed input).

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test as nodeTest } from 'node:test';

export const TARS_BIN = process.env.TARS_BIN || '/work/main/build/agent-tars-server';
export const TEST_API_KEY = 'sk-fake-TESTKEY-7c1d9e3a5b';

const live = new Set();
const tempDirs = [];

process.on('exit', () => {
    for (const s of live) {
        try {
            s.proc.kill('SIGKILL');
        } catch {
            /* already gone */
        }
    }
    for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
});

/** A fresh temporary directory, removed when the test process exits. */
export function tempDir(prefix = 'tars-it-') {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    tempDirs.push(d);
    return d;
}

/** The environment for the child: ours minus the OpenAI fallbacks, plus `extra`. */
function childEnv(extra) {
    const env = { ...process.env };
    delete env.OPENAI_API_KEY;
    delete env.OPENAI_BASE_URL;
    return { ...env, ...extra };
}

/** Flags that point the server at a fake OpenAI server. */
export function modelArgs(fake, { key = TEST_API_KEY, id = 'fake-model' } = {}) {
    return ['--model.provider', 'openai-compatible', '--model.id', id, '--model.baseURL', fake.baseURL, '--model.apiKey', key];
}

/** True if the flags already choose a storage (any --server.storage.* flag). */
function hasStorageFlag(args) {
    return args.some((a) => typeof a === 'string' && a.startsWith('--server.storage.'));
}

/** The value of `--name V` or `--name=V` in args, or null. */
export function flagValue(args, name) {
    for (let i = 0; i < args.length; i++) {
        if (args[i] === name && i + 1 < args.length) return args[i + 1];
        if (typeof args[i] === 'string' && args[i].startsWith(`${name}=`)) return args[i].slice(name.length + 1);
    }
    return null;
}

/**
 * Spawns the binary. opts: { fake, args, env, workspace, noDefaults, noStorageDefault, apiKey }.
 * Without noDefaults it adds --port 0 --host 127.0.0.1 --workspace <fresh dir> and the model flags
 * for `fake` (if given). Unless the flags already name a storage (or noStorageDefault), it adds
 * --server.storage.path <fresh dir>/agent-tars.db so that no test touches ~/.agent-tars.
 * Resolves once the "listening on" line arrived (10 s timeout). The result has stop(), kill9()
 * and restart() (a new process with the same flags: same workspace and database).
 */
export async function startServer(opts = {}) {
    const workspace = opts.workspace || tempDir('tars-ws-');
    const args = [];
    if (!opts.noDefaults) {
        args.push('--port', '0', '--host', '127.0.0.1', '--workspace', workspace);
        if (opts.fake) args.push(...modelArgs(opts.fake, { key: opts.apiKey || TEST_API_KEY }));
    }
    args.push(...(opts.args || []));
    if (!opts.noStorageDefault && !hasStorageFlag(args)) {
        args.push('--server.storage.path', path.join(tempDir('tars-db-'), 'agent-tars.db'));
    }
    const proc = spawn(TARS_BIN, args, { env: childEnv(opts.env || {}), stdio: ['ignore', 'pipe', 'pipe'] });
    const srv = {
        proc,
        args,
        env: opts.env || {},
        workspace,
        dbPath: flagValue(args, '--server.storage.path'),
        stdout: '',
        stderr: '',
        exit: null,
        stopped: false,
    };
    srv.kill9 = () => killServer(srv);
    srv.restart = (extra) => restartServer(srv, extra);
    srv.exited = new Promise((resolve) => {
        proc.on('exit', (code, signal) => {
            srv.exit = { code, signal };
            live.delete(srv);
            resolve(srv.exit);
        });
    });
    proc.stdout.setEncoding('utf8');
    proc.stderr.setEncoding('utf8');
    proc.stderr.on('data', (d) => {
        srv.stderr += d;
    });
    live.add(srv);
    const line = await new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
            reject(new Error(`server did not print its listening line within 10 s\nstderr:\n${tail(srv.stderr)}`));
        }, 10000);
        proc.on('error', (e) => {
            clearTimeout(timer);
            reject(e);
        });
        proc.stdout.on('data', (d) => {
            srv.stdout += d;
            const m = /agent-tars-server listening on http:\/\/([^\s:]+):(\d+)\n/.exec(srv.stdout);
            if (m) {
                clearTimeout(timer);
                resolve(m);
            }
        });
        srv.exited.then((e) => {
            clearTimeout(timer);
            reject(new Error(`server exited early (${JSON.stringify(e)})\nstderr:\n${tail(srv.stderr)}`));
        });
    });
    srv.host = line[1];
    srv.port = Number(line[2]);
    srv.url = `http://127.0.0.1:${srv.port}`;
    srv.stop = (signal = 'SIGTERM') => stopServer(srv, signal);
    return srv;
}

function tail(s, n = 6000) {
    return s.length > n ? `...${s.slice(-n)}` : s;
}

const SANITIZER_RE = /(ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|AddressSanitizer:DEADLYSIGNAL)/;

/** SIGTERM, wait up to 10 s, and require a clean exit 0 without sanitizer reports. */
export async function stopServer(srv, signal = 'SIGTERM') {
    if (!srv || srv.stopped) return;
    srv.stopped = true;
    if (srv.exit === null) srv.proc.kill(signal);
    let timer;
    const res = await Promise.race([
        srv.exited,
        new Promise((resolve) => {
            timer = setTimeout(() => resolve(null), 10000);
        }),
    ]);
    clearTimeout(timer);
    if (res === null) {
        srv.proc.kill('SIGKILL');
        await srv.exited;
        throw new Error(`server did not exit within 10 s of ${signal}\nstderr:\n${tail(srv.stderr)}`);
    }
    if (res.code !== 0 || res.signal !== null || SANITIZER_RE.test(srv.stderr)) {
        throw new Error(`server exit was not clean: ${JSON.stringify(res)}\nstderr:\n${tail(srv.stderr)}`);
    }
}

/** SIGKILL (a crash): waits for the process to be gone; no exit-status checks. */
export async function killServer(srv) {
    if (!srv) return;
    srv.stopped = true;
    if (srv.exit === null) srv.proc.kill('SIGKILL');
    await srv.exited;
}

/**
 * Starts a new process with the flags of `srv` (same workspace and database, a new port) after
 * `srv` has exited (stop or kill it first). extra: { args (appended), env (replaces) }.
 */
export async function restartServer(srv, extra = {}) {
    if (srv.exit === null) throw new Error('restartServer: the old process is still running; stop() or kill9() it first');
    return startServer({
        noDefaults: true,
        noStorageDefault: true,
        workspace: srv.workspace,
        args: [...srv.args, ...(extra.args || [])],
        env: extra.env || srv.env,
    });
}

/** Stops several servers / fakes, reporting the first failure after trying all of them. */
export async function cleanup(...things) {
    let first = null;
    for (const t of things) {
        if (!t) continue;
        try {
            if (t.proc) await stopServer(t);
            else if (typeof t.close === 'function') await t.close();
        } catch (e) {
            first = first || e;
        }
    }
    if (first) throw first;
}

/**
 * Like node:test's test(), but on failure appends the stderr tail of every running server, and
 * applies a default timeout of 20 s.
 */
export function test(name, opts, fn) {
    if (typeof opts === 'function') {
        fn = opts;
        opts = {};
    }
    const timeout = opts.timeout || 20000;
    return nodeTest(name, { ...opts, timeout: timeout + 2000 }, async (t) => {
        const before = new Set(live);
        let timer;
        try {
            // our own deadline, so that the finally block below runs even when the body hangs
            await Promise.race([
                fn(t),
                new Promise((_, reject) => {
                    timer = setTimeout(() => reject(new Error(`test timed out after ${timeout} ms`)), timeout);
                }),
            ]);
        } catch (e) {
            const diag = [...live].map((s) => `--- server :${s.port} stderr tail ---\n${tail(s.stderr, 3000)}`).join('\n');
            if (e && typeof e.message === 'string' && diag) e.message += `\n${diag}`;
            throw e;
        } finally {
            clearTimeout(timer);
            // servers this test started and did not stop (it failed half-way): kill them so the
            // test process can exit
            for (const s of live) {
                if (!before.has(s)) {
                    s.stopped = true;
                    s.proc.kill('SIGKILL');
                }
            }
        }
    });
}

// --- HTTP helpers ----------------------------------------------------------------------------

/** JSON request. body: object (JSON-encoded), string (sent as is) or undefined. */
export async function request(srv, method, urlPath, body, { headers = {}, signal } = {}) {
    const init = { method, headers: { ...headers }, signal };
    if (body !== undefined) {
        init.body = typeof body === 'string' ? body : JSON.stringify(body);
        if (!init.headers['content-type']) init.headers['content-type'] = 'application/json';
    }
    const res = await fetch(srv.url + urlPath, init);
    const text = await res.text();
    let json;
    try {
        json = JSON.parse(text);
    } catch {
        json = undefined;
    }
    return { status: res.status, headers: res.headers, text, json };
}

export const post = (srv, p, body, o) => request(srv, 'POST', p, body, o);
export const get = (srv, p, o) => request(srv, 'GET', p, undefined, o);

export async function createSession(srv) {
    const r = await post(srv, '/api/sessions/create', {});
    if (r.status !== 201 || !r.json || !r.json.sessionId) {
        throw new Error(`create session failed: ${r.status} ${r.text}`);
    }
    return r.json.sessionId;
}

/**
 * Parses an SSE body into frames. Every event must be an `id: n` block directly followed by a
 * `data: <json>` block; violations are collected in `errors`. Returns
 * { frames: [{id, data, event}], errors, trailing }.
 */
export function parseSse(raw) {
    const blocks = raw.split('\n\n');
    const trailing = blocks.pop(); // text after the last blank line (should be "")
    const frames = [];
    const errors = [];
    let pendingId = null;
    for (const b of blocks) {
        if (b.startsWith('id: ') && !b.includes('\n')) {
            if (pendingId !== null) errors.push(`id block ${JSON.stringify(b)} follows id block without data`);
            pendingId = b.slice(4);
            continue;
        }
        if (b.startsWith('data: ') && !b.includes('\n')) {
            if (pendingId === null) errors.push(`data block without a preceding id block: ${b.slice(0, 120)}`);
            let event = null;
            try {
                event = JSON.parse(b.slice(6));
            } catch {
                errors.push(`data block is not one JSON document: ${b.slice(0, 120)}`);
            }
            frames.push({ id: pendingId, data: b.slice(6), event });
            pendingId = null;
            continue;
        }
        errors.push(`unexpected SSE block: ${JSON.stringify(b.slice(0, 120))}`);
    }
    if (pendingId !== null) errors.push('stream ends with an id block without data');
    if (trailing !== '') errors.push(`stream ends with an unterminated block: ${JSON.stringify(trailing.slice(0, 120))}`);
    return { frames, errors, trailing };
}

/**
 * POST /api/sessions/query/stream and read the whole answer. onEvent(event, frames) is called
 * for every complete frame as it arrives (may return a promise; errors reject the call).
 * Resolves { status, headers, raw, frames, events, errors, json? }. Times out after timeoutMs.
 */
export async function streamQuery(srv, sessionId, query, { onEvent, timeoutMs = 15000, signal, body } = {}) {
    const ctrl = new AbortController();
    const timer = setTimeout(() => ctrl.abort(new Error(`stream did not finish within ${timeoutMs} ms`)), timeoutMs);
    if (signal) signal.addEventListener('abort', () => ctrl.abort(signal.reason));
    try {
        const res = await fetch(`${srv.url}/api/sessions/query/stream`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify(body || { sessionId, query }),
            signal: ctrl.signal,
        });
        const out = { status: res.status, headers: res.headers, raw: '' };
        if (!(res.headers.get('content-type') || '').startsWith('text/event-stream')) {
            out.raw = await res.text();
            try {
                out.json = JSON.parse(out.raw);
            } catch {
                /* not JSON */
            }
            out.frames = [];
            out.events = [];
            out.errors = [];
            return out;
        }
        const decoder = new TextDecoder();
        let seen = 0;
        for await (const chunk of res.body) {
            out.raw += decoder.decode(chunk, { stream: true });
            if (onEvent) {
                const { frames } = parseSse(out.raw.slice(0, out.raw.lastIndexOf('\n\n') + 2));
                for (; seen < frames.length; seen++) await onEvent(frames[seen].event, frames);
            }
        }
        out.raw += decoder.decode();
        Object.assign(out, parseSse(out.raw));
        out.events = out.frames.map((f) => f.event);
        return out;
    } catch (e) {
        if (ctrl.signal.aborted && ctrl.signal.reason instanceof Error) throw ctrl.signal.reason;
        throw e;
    } finally {
        clearTimeout(timer);
    }
}

/** Polls fn() every intervalMs until it returns truthy; throws after timeoutMs. */
export async function waitFor(fn, { timeoutMs = 10000, intervalMs = 50, what = 'condition' } = {}) {
    const end = Date.now() + timeoutMs;
    for (;;) {
        const v = await fn();
        if (v) return v;
        if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
        await sleep(intervalMs);
    }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// --- raw sockets -----------------------------------------------------------------------------

/** Opens a TCP connection to the server. */
export function connect(srv) {
    return new Promise((resolve, reject) => {
        const s = net.connect(srv.port, '127.0.0.1', () => resolve(s));
        s.once('error', reject);
    });
}

/**
 * A raw connection that accumulates everything received. Methods: write(bytes), waitFor(pred,
 * timeout) on the received text, waitClose(timeout) -> ms until the peer closed, close().
 */
export async function rawConnection(srv) {
    const sock = await connect(srv);
    const conn = { sock, data: '', closed: false, openedAt: Date.now(), closedAt: null };
    const waiters = new Set();
    const notify = () => {
        for (const w of waiters) w();
    };
    sock.setEncoding('latin1');
    sock.on('data', (d) => {
        conn.data += d;
        notify();
    });
    sock.on('error', () => {});
    sock.on('close', () => {
        conn.closed = true;
        conn.closedAt = Date.now();
        notify();
    });
    conn.write = (b) => new Promise((resolve) => sock.write(b, () => resolve()));
    conn.waitFor = (pred, timeoutMs = 5000, what = 'data') =>
        new Promise((resolve, reject) => {
            const check = () => {
                let v;
                try {
                    v = pred(conn);
                } catch {
                    v = false;
                }
                if (v) {
                    clearTimeout(t);
                    waiters.delete(check);
                    resolve(v);
                    return true;
                }
                if (conn.closed) {
                    clearTimeout(t);
                    waiters.delete(check);
                    reject(new Error(`connection closed while waiting for ${what}; got ${JSON.stringify(conn.data.slice(0, 500))}`));
                    return true;
                }
                return false;
            };
            const t = setTimeout(() => {
                waiters.delete(check);
                reject(new Error(`timed out waiting for ${what}; got ${JSON.stringify(conn.data.slice(0, 500))}`));
            }, timeoutMs);
            if (!check()) waiters.add(check);
        });
    conn.waitClose = (timeoutMs = 5000) =>
        new Promise((resolve, reject) => {
            if (conn.closed) return resolve(conn.closedAt - conn.openedAt);
            const t = setTimeout(() => reject(new Error(`connection not closed within ${timeoutMs} ms`)), timeoutMs);
            sock.once('close', () => {
                clearTimeout(t);
                resolve(conn.closedAt - conn.openedAt);
            });
        });
    /** Waits for n complete responses and returns them parsed. */
    conn.responses = async (n, timeoutMs = 5000) => {
        let parsed;
        await conn.waitFor(
            (c) => {
                parsed = parseResponses(c.data);
                return parsed.responses.length >= n;
            },
            timeoutMs,
            `${n} responses`,
        ).catch((e) => {
            // a close after the last complete response is fine
            parsed = parseResponses(conn.data);
            if (parsed.responses.length < n) throw e;
        });
        return parsed.responses;
    };
    conn.close = () => sock.destroy();
    return conn;
}

/**
 * Parses consecutive HTTP/1.1 responses from a latin1 string. Bodies by Content-Length or chunked.
 * Returns { responses: [{status, reason, headers (lower-cased), body}], rest }.
 */
export function parseResponses(data) {
    const responses = [];
    let pos = 0;
    for (;;) {
        const headEnd = data.indexOf('\r\n\r\n', pos);
        if (headEnd < 0) break;
        const lines = data.slice(pos, headEnd).split('\r\n');
        const m = /^HTTP\/1\.[01] (\d{3}) ?(.*)$/.exec(lines[0]);
        if (!m) throw new Error(`bad status line ${JSON.stringify(lines[0])}`);
        const headers = {};
        for (const l of lines.slice(1)) {
            const i = l.indexOf(':');
            const k = l.slice(0, i).trim().toLowerCase();
            const v = l.slice(i + 1).trim();
            headers[k] = headers[k] !== undefined ? `${headers[k]}, ${v}` : v;
        }
        let p = headEnd + 4;
        let body = '';
        const status = Number(m[1]);
        if (headers['transfer-encoding'] && /chunked/i.test(headers['transfer-encoding'])) {
            let complete = false;
            for (;;) {
                const le = data.indexOf('\r\n', p);
                if (le < 0) break;
                const size = parseInt(data.slice(p, le), 16);
                if (Number.isNaN(size)) throw new Error(`bad chunk size at ${p}`);
                if (size === 0) {
                    const end = data.indexOf('\r\n', le + 2);
                    if (end < 0) break;
                    p = end + 2;
                    complete = true;
                    break;
                }
                if (data.length < le + 2 + size + 2) break;
                body += data.slice(le + 2, le + 2 + size);
                p = le + 2 + size + 2;
            }
            if (!complete) break;
        } else {
            const len = status === 204 || status === 304 ? 0 : Number(headers['content-length'] || 0);
            if (data.length < p + len) break;
            body = data.slice(p, p + len);
            p += len;
        }
        responses.push({ status, reason: m[2], headers, body: Buffer.from(body, 'latin1').toString('utf8') });
        pos = p;
    }
    return { responses, rest: data.slice(pos) };
}

// --- event helpers ---------------------------------------------------------------------------

export const UUID_V4_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
export const MESSAGE_ID_RE = /^msg_\d+_[0-9a-z]{8}$/;
export const STREAMING_TYPES = new Set([
    'assistant_streaming_message',
    'assistant_streaming_thinking_message',
    'assistant_streaming_tool_call',
]);

/** The event types with consecutive streaming deltas collapsed into "<type>*". */
export function collapsedTypes(events) {
    const out = [];
    for (const e of events) {
        const t = STREAMING_TYPES.has(e.type) ? `${e.type}*` : e.type;
        if (STREAMING_TYPES.has(e.type) && out[out.length - 1] === t) continue;
        out.push(t);
    }
    return out;
}

export const ofType = (events, type) => events.filter((e) => e.type === type);

/** Text form of a tool_result content for substring checks. */
export function contentString(c) {
    if (typeof c === 'string') return c;
    if (Array.isArray(c)) return c.map((p) => (p && typeof p.text === 'string' ? p.text : JSON.stringify(p))).join('');
    return JSON.stringify(c);
}

/** A unique marker-tagged query, so the fake can tell conversations apart. */
let seq = 0;
export function q(scenario, text = '') {
    seq++;
    return `[[scenario:${scenario}]] ${text || 'query'} #${process.pid}-${seq}-${Math.random().toString(36).slice(2, 8)}`;
}
