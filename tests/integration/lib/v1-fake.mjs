// SPDX-License-Identifier: MIT
// A tiny OpenAI-compatible model for POST /api/v1/sessions/generate-summary: it answers a title as
// JSON, unparseable text, or an error, chosen by a "[[title:MODE]]" marker anywhere in the request
// body (so it does not matter how the server wraps the client's messages), and honours
// body.stream (SSE chunks) or not (one chat.completion object).

import http from 'node:http';

export const TITLE = 'Weather In Paris Today';
export const TITLE_ERROR_MESSAGE = 'The title model is down';

/** Starts the fake; returns { baseURL, requests, close }. */
export async function startTitleFake() {
    const requests = [];
    const sockets = new Set();
    const server = http.createServer((req, res) => {
        const chunks = [];
        req.on('data', (c) => chunks.push(c));
        req.on('end', () => {
            const raw = Buffer.concat(chunks).toString('utf8');
            let body = null;
            try {
                body = JSON.parse(raw);
            } catch {
                /* recorded as null */
            }
            requests.push({ url: req.url, headers: req.headers, raw, body });
            answer(res, raw, body);
        });
    });
    server.on('connection', (s) => {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
    });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = server.address().port;
    return {
        baseURL: `http://127.0.0.1:${port}/v1`,
        requests,
        close: async () => {
            for (const s of sockets) s.destroy();
            await new Promise((resolve) => server.close(() => resolve()));
        },
    };
}

function answer(res, raw, body) {
    const m = /\[\[title:(\w+)\]\]/.exec(raw);
    const mode = m ? m[1] : 'ok';
    if (mode === 'fail') {
        const err = JSON.stringify({ error: { message: TITLE_ERROR_MESSAGE, type: 'invalid_request_error', param: null, code: null } });
        res.writeHead(400, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(err) });
        res.end(err);
        return;
    }
    const content = mode === 'garbage' ? 'Sure! Here is a title: weather (no JSON here)' : JSON.stringify({ title: TITLE });
    const model = (body && body.model) || 'fake-model';
    if (body && body.stream) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        const base = { id: 'chatcmpl-title', object: 'chat.completion.chunk', created: 1, model };
        const frames = [
            { ...base, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] },
            { ...base, choices: [{ index: 0, delta: { content: content.slice(0, 7) }, finish_reason: null }] },
            { ...base, choices: [{ index: 0, delta: { content: content.slice(7) }, finish_reason: null }] },
            { ...base, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] },
        ];
        for (const f of frames) res.write(`data: ${JSON.stringify(f)}\n\n`);
        res.end('data: [DONE]\n\n');
        return;
    }
    const out = JSON.stringify({
        id: 'chatcmpl-title',
        object: 'chat.completion',
        created: 1,
        model,
        choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
        usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 },
    });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out) });
    res.end(out);
}
