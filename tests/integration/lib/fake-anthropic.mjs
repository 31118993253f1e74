// SPDX-License-Identifier: MIT
// A fake Anthropic Messages API (POST /v1/messages, "stream": true) for the integration tests.
// It checks the request headers as the real API does (x-api-key, anthropic-version), speaks the
// real wire format (named SSE events: message_start, content_block_start/delta/stop with
// text_delta, input_json_delta, thinking_delta and signature_delta, ping, message_delta,
// message_stop; error bodies and error events) and picks a scripted behaviour from a
// "[[scenario:NAME k=v ...]]" marker in the user's query, like fake-openai.mjs.

import http from 'node:http';
import crypto from 'node:crypto';
import { EventEmitter } from 'node:events';

const MARKER_RE = /\[\[scenario:([^\]]*)\]\]/;

export const ANTHROPIC_KEY = 'sk-ant-fake-TESTKEY-4e2b9d';
export const SIGNATURE = 'EqQBCgIYAhIMfakeSignatureForTheTests0123456789';
export const THINKING_TEXT = 'The user wants a greeting. Keep it short.';
export const THINKING_ANSWER = 'Hi! I thought about it first.';
export const OVERLOADED_BODY = { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } };
export const AUTH_MESSAGE = 'invalid x-api-key';
export const SPEND_MESSAGE = 'You have reached your API usage limits.';
export const FILE_CONTENT = 'hello from fake claude';

export function stripMarker(text) {
    return String(text).replace(MARKER_RE, '').trim();
}

export function claudeTextReply(query) {
    return `Hello from fake Claude. You said: "${stripMarker(query)}". Bye!`;
}

export function claudeFinalText(lastResult) {
    return `Done. The last tool said: ${lastResult}`;
}

function randAlnum(n) {
    const abc = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
    const bytes = crypto.randomBytes(n);
    let s = '';
    for (let i = 0; i < n; i++) s += abc[bytes[i] % abc.length];
    return s;
}

/** The text of a content value (string or blocks); tool_result blocks give their content. */
export function blocksText(content) {
    if (typeof content === 'string') return content;
    if (!Array.isArray(content)) return '';
    return content
        .map((b) => {
            if (!b) return '';
            if (b.type === 'text') return b.text;
            if (b.type === 'tool_result') return blocksText(b.content);
            return '';
        })
        .join('');
}

function userTexts(msg) {
    if (typeof msg.content === 'string') return msg.content;
    return (Array.isArray(msg.content) ? msg.content : [])
        .filter((b) => b && b.type === 'text')
        .map((b) => b.text)
        .join('');
}

/** {name, params, query, step, lastResult}: the scenario comes from the user message carrying the marker. */
export function analyzeMessages(messages) {
    let qi = -1;
    for (let i = 0; i < messages.length; i++) {
        if (messages[i].role === 'user' && MARKER_RE.test(userTexts(messages[i]))) qi = i;
    }
    const query = qi >= 0 ? userTexts(messages[qi]) : '';
    let step = 0;
    for (let i = qi + 1; i < messages.length; i++) if (messages[i].role === 'assistant') step++;
    const m = MARKER_RE.exec(query);
    let name = 'text';
    const params = {};
    if (m) {
        const words = m[1].trim().split(/\s+/);
        name = words[0] || 'text';
        for (const w of words.slice(1)) {
            const eq = w.indexOf('=');
            if (eq > 0) params[w.slice(0, eq)] = w.slice(eq + 1);
        }
    }
    const last = messages[messages.length - 1];
    const lastResult = last && last.role === 'user' && qi !== messages.length - 1 ? blocksText(last.content) : null;
    return { name, params, query, step, lastResult };
}

// --- the wire --------------------------------------------------------------------------------

const ev = (type, obj) => `event: ${type}\ndata: ${JSON.stringify({ type, ...obj })}\n\n`;

function pieces(s, sizes = [3, 5, 7, 4, 6]) {
    const out = [];
    for (let i = 0, k = 0; i < s.length; k++) {
        const n = sizes[k % sizes.length];
        out.push(s.slice(i, i + n));
        i += n;
    }
    return out;
}

const words = (s) => s.match(/\s*\S+/g) || [s];

/** The events of one message: blocks = [{text} | {thinking, signature} | {tool: name, input}]. */
export function messageEvents(model, blocks, stopReason) {
    const out = [
        ev('message_start', {
            message: {
                id: `msg_01${randAlnum(22)}`,
                type: 'message',
                role: 'assistant',
                model,
                content: [],
                stop_reason: null,
                stop_sequence: null,
                usage: { input_tokens: 123, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 1, service_tier: 'standard' },
            },
        }),
    ];
    blocks.forEach((b, index) => {
        if (b.text !== undefined) {
            out.push(ev('content_block_start', { index, content_block: { type: 'text', text: '' } }));
            if (index === 0) out.push('event: ping\ndata: {"type": "ping"}\n\n');
            for (const w of words(b.text)) out.push(ev('content_block_delta', { index, delta: { type: 'text_delta', text: w } }));
        } else if (b.thinking !== undefined) {
            out.push(ev('content_block_start', { index, content_block: { type: 'thinking', thinking: '', signature: '' } }));
            for (const w of words(b.thinking)) out.push(ev('content_block_delta', { index, delta: { type: 'thinking_delta', thinking: w } }));
            out.push(ev('content_block_delta', { index, delta: { type: 'signature_delta', signature: b.signature } }));
        } else {
            b.id = b.id || `toolu_01${randAlnum(22)}`;
            out.push(ev('content_block_start', { index, content_block: { type: 'tool_use', id: b.id, name: b.tool, input: {} } }));
            out.push(ev('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: '' } }));
            for (const p of pieces(JSON.stringify(b.input))) {
                out.push(ev('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: p } }));
            }
        }
        out.push(ev('content_block_stop', { index }));
    });
    out.push(ev('message_delta', { delta: { stop_reason: stopReason, stop_sequence: null }, usage: { output_tokens: 42 } }));
    out.push(ev('message_stop', {}));
    return out;
}

// --- scenarios -------------------------------------------------------------------------------

const SCENARIOS = {
    text(s, a) {
        s.reply([{ text: claudeTextReply(a.query) }], 'end_turn');
    },
    // write_file, then read_file, then an answer quoting the read result.
    tool(s, a) {
        const path = a.params.path || 'claude.txt';
        if (a.step === 0) s.reply([{ text: 'I will write the file.' }, { tool: 'write_file', input: { path, content: FILE_CONTENT } }], 'tool_use');
        else if (a.step === 1) s.reply([{ tool: 'read_file', input: { path } }], 'tool_use');
        else s.reply([{ text: claudeFinalText(a.lastResult) }], 'end_turn');
    },
    thinking(s) {
        s.reply([{ thinking: THINKING_TEXT, signature: SIGNATURE }, { text: THINKING_ANSWER }], 'end_turn');
    },
    // Thinking and a tool call, then an answer that says whether the signed thinking block came back.
    thinking_tool(s, a, attempt, body) {
        if (a.step === 0) {
            s.reply([{ thinking: THINKING_TEXT, signature: SIGNATURE }, { tool: 'list_directory', input: { path: '.' } }], 'tool_use');
            return;
        }
        const asst = body.messages.filter((m) => m.role === 'assistant').at(-1);
        const first = asst && Array.isArray(asst.content) ? asst.content[0] : null;
        const ok = first && first.type === 'thinking' && first.signature === SIGNATURE && first.thinking === THINKING_TEXT;
        s.reply([{ text: ok ? 'thinking replayed' : 'thinking missing' }], 'end_turn');
    },
    // 529 overloaded on the first attempt, then a normal answer.
    overloaded(s, a, attempt) {
        if (attempt === 1) s.error(529, OVERLOADED_BODY);
        else SCENARIOS.text(s, a);
    },
    // The monthly spend cap: a 429 that must not be retried.
    spend_limit(s) {
        s.error(429, { type: 'error', error: { type: 'rate_limit_error', message: SPEND_MESSAGE, details: { error_code: 'enforced_spend_limit_reached' } } }, { 'retry-after': '1' });
    },
    // Text, then an error event inside the 200 stream.
    stream_error(s, a) {
        const frames = messageEvents(s.model, [{ text: 'Partial answer' }], 'end_turn').slice(0, 5);
        frames.push(ev('error', { error: { type: 'overloaded_error', message: 'Overloaded' } }));
        s.play(frames);
    },
    // Prompt engineering: a <tool_call> cut off by the stop sequence, then an answer quoting the result.
    pe_tool(s, a) {
        if (a.step === 0) {
            s.reply([{ text: 'Listing.\n<tool_call>\n{"name": "list_directory", "parameters": {"path": "."}}\n' }], 'stop_sequence');
        } else {
            s.reply([{ text: claudeFinalText(a.lastResult) }], 'end_turn');
        }
    },
};

// --- the server ------------------------------------------------------------------------------

/**
 * Starts the fake. Returns { baseURL (no /v1), port, requests, requestsMatching(needle), close }.
 * Request records: { seq, url, headers, body, scenario, step, query, attempt, status, startedAt, endedAt }.
 */
export async function startFakeAnthropic({ key = ANTHROPIC_KEY } = {}) {
    const fake = new EventEmitter();
    const requests = [];
    const sockets = new Set();
    const attempts = new Map();
    fake.requests = requests;

    const server = http.createServer((req, res) => {
        const chunks = [];
        req.on('data', (c) => chunks.push(c));
        req.on('end', () => onRequest(req, res, Buffer.concat(chunks).toString('utf8')));
    });
    server.on('connection', (s) => {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
    });

    function sendJson(res, rec, status, obj, headers = {}) {
        rec.status = status;
        const body = JSON.stringify(obj);
        res.writeHead(status, {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
            'request-id': `req_01${randAlnum(20)}`,
            ...headers,
        });
        res.end(body);
    }

    const invalid = (message) => ({ type: 'error', error: { type: 'invalid_request_error', message } });

    function onRequest(req, res, rawBody) {
        const rec = { seq: requests.length, url: req.url, headers: req.headers, rawBody, body: null, startedAt: Date.now(), endedAt: null, status: null, query: '' };
        requests.push(rec);
        res.on('close', () => {
            rec.endedAt = Date.now();
        });
        if (req.method !== 'POST' || req.url !== '/v1/messages') return sendJson(res, rec, 404, { type: 'error', error: { type: 'not_found_error', message: `Not found: ${req.url}` } });
        if (req.headers['x-api-key'] !== key) return sendJson(res, rec, 401, { type: 'error', error: { type: 'authentication_error', message: AUTH_MESSAGE }, request_id: 'req_01fake' });
        if (req.headers['anthropic-version'] !== '2023-06-01') return sendJson(res, rec, 400, invalid('anthropic-version: header is required'));
        try {
            rec.body = JSON.parse(rawBody);
        } catch {
            return sendJson(res, rec, 400, invalid('Invalid JSON'));
        }
        const b = rec.body;
        if (!b.model || !Number.isInteger(b.max_tokens) || !Array.isArray(b.messages) || b.stream !== true) {
            return sendJson(res, rec, 400, invalid('model, max_tokens, messages and stream:true are required'));
        }
        if (b.thinking && b.temperature !== undefined && b.temperature !== 1) {
            return sendJson(res, rec, 400, invalid('temperature may only be set to 1 when thinking is enabled'));
        }
        if (b.messages.some((m) => m.role !== 'user' && m.role !== 'assistant')) return sendJson(res, rec, 400, invalid('messages: roles must be user or assistant'));
        const a = analyzeMessages(b.messages);
        Object.assign(rec, { scenario: a.name, params: a.params, step: a.step, query: a.query });
        const attempt = (attempts.get(a.query) || 0) + 1;
        attempts.set(a.query, attempt);
        rec.attempt = attempt;
        const scenario = SCENARIOS[a.name];
        if (!scenario) return sendJson(res, rec, 400, invalid(`fake: unknown scenario ${a.name}`));
        const s = {
            model: b.model,
            play(frames) {
                rec.status = 200;
                res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'request-id': `req_01${randAlnum(20)}` });
                if (a.params.frag) {
                    const all = Buffer.from(frames.join(''), 'utf8');
                    const n = Math.max(1, Number(a.params.frag));
                    frames = [];
                    for (let i = 0; i < all.length; i += n) frames.push(all.subarray(i, i + n));
                }
                let i = 0;
                const next = () => {
                    if (res.destroyed) return;
                    if (i < frames.length) {
                        res.write(frames[i++]);
                        setImmediate(next);
                    } else res.end();
                };
                next();
            },
            reply(blocks, stop) {
                rec.sent = blocks;
                s.play(messageEvents(b.model, blocks, stop));
            },
            error(status, body, headers) {
                sendJson(res, rec, status, body, headers);
            },
        };
        scenario(s, a, attempt, b);
    }

    await new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', resolve);
    });
    fake.port = server.address().port;
    fake.baseURL = `http://127.0.0.1:${fake.port}`;
    fake.requestsMatching = (needle) => requests.filter((r) => r.query.includes(needle));
    fake.close = async () => {
        for (const s of sockets) s.destroy();
        await new Promise((resolve) => server.close(() => resolve()));
    };
    return fake;
}
