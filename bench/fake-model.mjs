// SPDX-License-Identifier: MIT
// A minimal, fast fake OpenAI-compatible model for the benchmark. Every POST .../chat/completions
// is answered at once with a pre-serialized chat.completion.chunk SSE body (role chunk, N content
// deltas, finish chunk, usage chunk, [DONE]), so the fake costs one buffer write per request.
// Run as its own process (node bench/fake-model.mjs [--port N]) so it does not share the bench
// client's event loop; it prints "fake-model listening on http://127.0.0.1:PORT" on stdout.

import http from 'node:http';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

/** Number of content deltas when the query has no [[bench:chunks=N]] marker. */
export const DEFAULT_CHUNKS = 200;
const MAX_CHUNKS = 100000;
const CHUNKS_RE = /\[\[bench:chunks=(\d+)\]\]/;

/** The content of delta i (deterministic, so a client could rebuild the full answer). */
export function deltaText(i) {
    return ` w${i}`;
}

function chunkLine(id, created, delta, finishReason, extra) {
    const obj = {
        id,
        object: 'chat.completion.chunk',
        created,
        model: 'bench',
        system_fingerprint: null,
        choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
        ...extra,
    };
    return `data: ${JSON.stringify(obj)}\n\n`;
}

/** The whole SSE body of a streamed answer with n content deltas. */
export function buildBody(n) {
    const id = `chatcmpl-bench${n}`;
    const created = Math.floor(Date.now() / 1000);
    const parts = [chunkLine(id, created, { role: 'assistant', content: '' }, null)];
    for (let i = 0; i < n; i++) parts.push(chunkLine(id, created, { content: deltaText(i) }, null));
    parts.push(chunkLine(id, created, {}, 'stop'));
    const usage = { prompt_tokens: 50, completion_tokens: n, total_tokens: 50 + n };
    parts.push(`data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model: 'bench', choices: [], usage })}\n\n`);
    parts.push('data: [DONE]\n\n');
    return Buffer.from(parts.join(''), 'utf8');
}

/** The requested delta count: the marker in the last user message, else DEFAULT_CHUNKS. */
function chunksFor(body) {
    let msgs;
    try {
        msgs = JSON.parse(body).messages;
    } catch {
        return DEFAULT_CHUNKS;
    }
    if (!Array.isArray(msgs)) return DEFAULT_CHUNKS;
    for (let i = msgs.length - 1; i >= 0; i--) {
        const m = msgs[i];
        if (!m || m.role !== 'user') continue;
        const text = typeof m.content === 'string' ? m.content : JSON.stringify(m.content);
        const hit = CHUNKS_RE.exec(text);
        return hit ? Math.min(Number(hit[1]), MAX_CHUNKS) : DEFAULT_CHUNKS;
    }
    return DEFAULT_CHUNKS;
}

/**
 * Starts the fake on 127.0.0.1. Resolves { port, baseURL, stats, close }. stats counts TCP
 * connections accepted, requests received, answered (body fully handed to the kernel), closed early, and non-completion routes.
 */
export function startFakeModel({ port = 0 } = {}) {
    const cache = new Map();
    const stats = { connections: 0, requests: 0, answered: 0, closedEarly: 0, other: 0, active: 0, maxActive: 0 };
    const bodyFor = (n) => {
        let b = cache.get(n);
        if (!b) {
            b = buildBody(n);
            cache.set(n, b);
        }
        return b;
    };
    const server = http.createServer((req, res) => {
        if (req.method === 'GET' && req.url === '/stats') {
            res.writeHead(200, { 'content-type': 'application/json' });
            res.end(JSON.stringify(stats));
            return;
        }
        if (req.method !== 'POST' || !req.url.endsWith('/chat/completions')) {
            stats.other++;
            res.writeHead(404, { 'content-type': 'application/json' });
            res.end('{"error":{"message":"not found","type":"invalid_request_error"}}');
            req.resume();
            return;
        }
        stats.requests++;
        stats.active++;
        if (stats.active > stats.maxActive) stats.maxActive = stats.active;
        const parts = [];
        req.on('data', (c) => parts.push(c));
        req.on('end', () => {
            const buf = bodyFor(chunksFor(Buffer.concat(parts).toString('utf8')));
            res.writeHead(200, {
                'content-type': 'text/event-stream',
                'cache-control': 'no-cache',
                'content-length': buf.length,
            });
            res.end(buf);
        });
        let done = false;
        res.on('finish', () => {
            done = true;
            stats.answered++;
            stats.active--;
        });
        res.on('close', () => {
            if (done) return;
            stats.closedEarly++;
            stats.active--;
        });
    });
    server.on('connection', () => {
        stats.connections++;
    });
    server.keepAliveTimeout = 30000;
    server.headersTimeout = 60000;
    server.requestTimeout = 0;
    return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen({ port, host: '127.0.0.1', backlog: 8192 }, () => {
            const p = server.address().port;
            resolve({
                port: p,
                baseURL: `http://127.0.0.1:${p}/v1`,
                stats,
                close: () =>
                    new Promise((r) => {
                        server.close(() => r());
                        server.closeAllConnections();
                    }),
            });
        });
    });
}

// Run as a process: print the listening line, exit on SIGTERM/SIGINT or when stdin closes
// (the parent died), so a crashed bench never leaves the fake behind.
if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
    const i = process.argv.indexOf('--port');
    const port = i > 0 ? Number(process.argv[i + 1]) : 0;
    const fake = await startFakeModel({ port });
    process.stdout.write(`fake-model listening on http://127.0.0.1:${fake.port}\n`);
    const stop = () => fake.close().then(() => process.exit(0));
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    process.stdin.on('end', () => process.exit(0));
    process.stdin.on('error', () => process.exit(0));
    process.stdin.resume();
}
