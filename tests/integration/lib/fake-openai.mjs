// SPDX-License-Identifier: MIT
// A fake OpenAI-compatible Chat Completions server for the integration tests. It speaks the real
// streaming wire format (chat.completion.chunk SSE frames, fragmented tool calls, usage chunk,
// [DONE]) and picks a scripted behaviour from a "[[scenario:NAME k=v ...]]" marker in the last user
// message, so many sessions can run different scenarios against one instance at the same time.

import http from 'node:http';
import crypto from 'node:crypto';
import { EventEmitter } from 'node:events';

const MARKER_RE = /\[\[scenario:([^\]]*)\]\]/;

// --- helpers shared with the tests ---------------------------------------------------------

/** The query text without its scenario marker, trimmed. */
export function stripMarker(text) {
    return String(text).replace(MARKER_RE, '').trim();
}

/** The exact answer the `text` scenario gives for a query. */
export function textReply(query) {
    return `Hello from the fake model. You said: "${stripMarker(query)}". Have a nice day!`;
}

/** The exact answer the `reasoning` scenario gives, and its reasoning text. */
export const REASONING_TEXT = 'The user wants a greeting. I should answer briefly and politely.';
export const REASONING_ANSWER = 'Hi there! This answer came after some thinking.';

export const FILE_CONTENT = 'hello from fake\nsecond line';

export const OPENAI_401_BODY = {
    error: {
        message: 'Incorrect API key provided',
        type: 'invalid_request_error',
        param: null,
        code: 'invalid_api_key',
    },
};
export const OPENAI_500_MESSAGE = 'The server had an error while processing your request. Sorry about that!';
export const STREAM_ERROR_MESSAGE = 'Something went wrong in the middle of the stream';

/** Final answer of tool scenarios: it quotes the last tool message the model received. */
export function toolFinalText(lastToolContent) {
    return `Done. The last tool said: ${lastToolContent}`;
}

// --- chunking -------------------------------------------------------------------------------

const PIECE_SIZES = [3, 5, 7, 4, 6];

/** Splits s into small pieces of 3-7 characters (deterministic). */
export function splitPieces(s, sizes = PIECE_SIZES) {
    const out = [];
    let i = 0;
    let k = 0;
    while (i < s.length) {
        const n = sizes[k++ % sizes.length];
        out.push(s.slice(i, i + n));
        i += n;
    }
    return out;
}

/** Splits text into word-ish deltas (each word keeps its leading space). */
function splitWords(s) {
    const parts = s.match(/\s*\S+/g) || [s];
    return parts.length ? parts : [s];
}

function randAlnum(n) {
    const abc = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
    const bytes = crypto.randomBytes(n);
    let s = '';
    for (let i = 0; i < n; i++) s += abc[bytes[i] % abc.length];
    return s;
}

function contentText(content) {
    if (typeof content === 'string') return content;
    if (Array.isArray(content)) {
        return content.map((p) => (p && typeof p.text === 'string' ? p.text : '')).join('');
    }
    return content == null ? '' : JSON.stringify(content);
}

/** Parses the scenario marker in the last user message: {name, params, query, step}. */
export function analyzeMessages(messages) {
    let lastUser = -1;
    for (let i = 0; i < messages.length; i++) if (messages[i] && messages[i].role === 'user') lastUser = i;
    const query = lastUser >= 0 ? contentText(messages[lastUser].content) : '';
    let step = 0;
    for (let i = lastUser + 1; i < messages.length; i++) if (messages[i].role === 'assistant') step++;
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
    let lastTool = null;
    for (let i = messages.length - 1; i > lastUser; i--) {
        if (messages[i].role === 'tool') {
            lastTool = contentText(messages[i].content);
            break;
        }
    }
    // A compaction request of the server (its summary prompt): answered by the `summary` scenario.
    const sys = messages[0] && messages[0].role === 'system' ? contentText(messages[0].content) : '';
    if (sys.startsWith('You compact conversations')) return { name: 'summary', params: {}, query, step: 0, lastTool: null };
    return { name, params, query, step, lastTool };
}

/** What the `summary` scenario answers to a compaction request. */
export const SUMMARY_TEXT = 'SUMMARY: the user sent long texts and got greetings back.';

// --- the server -----------------------------------------------------------------------------

/**
 * Starts the fake. Options: { chunkDelayMs } default delay between chunks (0).
 * Returns { baseURL, port, requests, events, waitForRequest, requestsMatching, close, maxConcurrent }.
 * Every request record: { seq, method, url, headers, rawBody, body, scenario, step, query,
 *   startedAt, endedAt, status, completed (we finished the response), closedEarly (the client closed
 *   before we finished) }.
 */
export async function startFakeOpenAI(options = {}) {
    const fake = new EventEmitter();
    fake.setMaxListeners(0);
    const requests = [];
    const sockets = new Set();
    const timers = new Set();
    const attempts = new Map(); // key: last user message -> number of requests seen
    let active = 0;
    fake.maxConcurrent = 0;
    fake.requests = requests;

    const server = http.createServer((req, res) => {
        const chunks = [];
        req.on('data', (c) => chunks.push(c));
        req.on('end', () => onRequest(req, res, Buffer.concat(chunks).toString('utf8')));
    });
    server.keepAliveTimeout = 5000;
    server.on('connection', (s) => {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
    });

    function later(ms, fn) {
        const t = setTimeout(() => {
            timers.delete(t);
            fn();
        }, ms);
        timers.add(t);
        return t;
    }

    function onRequest(req, res, rawBody) {
        const rec = {
            seq: requests.length,
            method: req.method,
            url: req.url,
            headers: req.headers,
            rawBody,
            body: null,
            scenario: null,
            params: {},
            step: 0,
            query: '',
            startedAt: Date.now(),
            endedAt: null,
            status: null,
            completed: false,
            closedEarly: false,
        };
        try {
            rec.body = JSON.parse(rawBody);
        } catch {
            rec.body = null;
        }
        requests.push(rec);
        active++;
        fake.maxConcurrent = Math.max(fake.maxConcurrent, active);
        let done = false;
        const finish = (early) => {
            if (done) return;
            done = true;
            active--;
            rec.endedAt = Date.now();
            if (early) rec.closedEarly = true;
            else rec.completed = true;
            fake.emit('update', rec);
        };
        res.on('finish', () => finish(false));
        res.on('close', () => finish(!res.writableFinished));

        if (req.method !== 'POST' || !/\/chat\/completions$/.test(req.url.split('?')[0])) {
            rec.status = 404;
            sendJson(res, 404, { error: { message: `Unknown path ${req.url}`, type: 'invalid_request_error', param: null, code: null } });
            return;
        }
        if (!rec.body || !Array.isArray(rec.body.messages)) {
            rec.status = 400;
            sendJson(res, 400, { error: { message: 'Invalid body', type: 'invalid_request_error', param: null, code: null } });
            return;
        }
        const a = analyzeMessages(rec.body.messages);
        rec.scenario = a.name;
        rec.params = a.params;
        rec.step = a.step;
        rec.query = a.query;
        const key = a.query;
        const attempt = (attempts.get(key) || 0) + 1;
        attempts.set(key, attempt);
        rec.attempt = attempt;
        fake.emit('update', rec);
        const stream = new ChunkStream(res, rec, a, later, options);
        const scenario = SCENARIOS[a.name];
        if (!scenario) {
            rec.status = 400;
            sendJson(res, 400, { error: { message: `fake: unknown scenario ${a.name}`, type: 'invalid_request_error', param: null, code: null } });
            return;
        }
        scenario(stream, a, attempt);
    }

    await new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', resolve);
    });
    const port = server.address().port;
    fake.port = port;
    fake.baseURL = `http://127.0.0.1:${port}/v1`;

    /** Requests whose last user message contains `needle`. */
    fake.requestsMatching = (needle) => requests.filter((r) => r.query.includes(needle));

    /** Resolves with the first request record for which pred(rec) holds (checked on every update). */
    fake.waitForRequest = (pred, timeoutMs = 10000) =>
        new Promise((resolve, reject) => {
            const hit = requests.find(pred);
            if (hit) return resolve(hit);
            const t = setTimeout(() => {
                fake.off('update', onUpdate);
                reject(new Error(`fake-openai: no matching request within ${timeoutMs} ms`));
            }, timeoutMs);
            const onUpdate = () => {
                const r = requests.find(pred);
                if (r) {
                    clearTimeout(t);
                    fake.off('update', onUpdate);
                    resolve(r);
                }
            };
            fake.on('update', onUpdate);
        });

    /** Connections from the server open right now (the model connection pool's size). */
    fake.openSockets = () => sockets.size;

    fake.close = async () => {
        for (const t of timers) clearTimeout(t);
        timers.clear();
        for (const s of sockets) s.destroy();
        await new Promise((resolve) => server.close(() => resolve()));
    };
    return fake;
}

function sendJson(res, status, obj, headers = {}) {
    const body = JSON.stringify(obj);
    res.writeHead(status, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
        ...headers,
    });
    res.end(body);
}

/** Writes chat.completion.chunk frames with an optional delay between them. */
class ChunkStream {
    constructor(res, rec, analysis, later, options) {
        this.res = res;
        this.rec = rec;
        this.later = later;
        this.id = `chatcmpl-${randAlnum(29)}`;
        this.created = Math.floor(Date.now() / 1000);
        this.model = (rec.body && rec.body.model) || 'fake-model';
        // nousage=1: a provider that never reports usage, even when asked
        this.usage = !!(rec.body && rec.body.stream_options && rec.body.stream_options.include_usage) && !analysis.params.nousage;
        const d = analysis.params.delay !== undefined ? Number(analysis.params.delay) : options.chunkDelayMs || 0;
        this.delay = Number.isFinite(d) ? d : 0;
        this.params = analysis.params;
        this.started = false;
        this.closed = false;
        res.on('close', () => {
            this.closed = true;
        });
    }

    chunk(delta, finishReason = null) {
        const c = {
            id: this.id,
            object: 'chat.completion.chunk',
            created: this.created,
            model: this.model,
            system_fingerprint: 'fp_fake0001',
            choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
        };
        if (this.usage) c.usage = null;
        return `data: ${JSON.stringify(c)}\n\n`;
    }

    usageChunk() {
        const c = {
            id: this.id,
            object: 'chat.completion.chunk',
            created: this.created,
            model: this.model,
            system_fingerprint: 'fp_fake0001',
            choices: [],
            usage: { prompt_tokens: 42, completion_tokens: 17, total_tokens: 59 },
        };
        return `data: ${JSON.stringify(c)}\n\n`;
    }

    head() {
        if (this.started) return;
        this.started = true;
        this.rec.status = 200;
        this.res.writeHead(200, {
            'content-type': 'text/event-stream; charset=utf-8',
            'cache-control': 'no-cache',
            'x-request-id': `req_${randAlnum(16)}`,
        });
    }

    /** Queues raw frames; `then` is an action run after the last one ('end', 'destroy', 'stall'). */
    play(frames, then = 'end') {
        this.head();
        frames = this.wireVariants(frames);
        let i = 0;
        const next = () => {
            if (this.closed) return;
            if (i < frames.length) {
                if (this.delay > 0) {
                    this.res.write(frames[i++]);
                    this.later(this.delay, next);
                    return;
                }
                // At full speed a real server's writes coalesce: send the frames of one tick
                // (up to 16 KiB) in one write. The frames themselves, and so every chunk split
                // the client parses, stay exactly the same; frag=N still cuts bytes apart.
                let n = 0;
                const batch = [];
                do {
                    const f = frames[i++];
                    batch.push(f);
                    n += f.length;
                } while (i < frames.length && n < 16384 && !this.params.frag);
                this.res.write(batch.length === 1 ? batch[0] : batch.join(''));
                setImmediate(next);
                return;
            }
            if (then === 'end') this.res.end();
            else if (then === 'destroy') this.res.socket.destroy();
            // 'stall': leave the response open until the client or fake.close() ends it
        };
        next();
    }

    /**
     * Real-world framing variations, chosen by scenario params: crlf=1 (CRLF line ends),
     * comments=1 (": keep-alive" comment events, as OpenRouter sends), frag=N (the bytes are
     * re-cut into N-byte writes, splitting lines and UTF-8 sequences).
     */
    wireVariants(frames) {
        const p = this.params;
        if (p.comments) frames = frames.flatMap((f) => [': keep-alive\n\n', f]);
        if (p.crlf) frames = frames.map((f) => f.replace(/\n/g, '\r\n'));
        if (p.frag) {
            const n = Math.max(1, Number(p.frag));
            const all = Buffer.from(frames.join(''), 'utf8');
            const out = [];
            for (let i = 0; i < all.length; i += n) out.push(all.subarray(i, i + n));
            frames = out;
        }
        return frames;
    }

    /** Frames of a normal completion: role delta, reasoning, text, tool calls, finish, usage, DONE. */
    completion({ reasoning = null, text = null, toolCalls = [], finish = null }) {
        // variant=doubao: every delta repeats role, tool fragments carry content "", the finish
        // delta is not empty; variant=hunyuan: later tool fragments repeat id, type and name "".
        const doubao = this.params.variant === 'doubao';
        const hunyuan = this.params.variant === 'hunyuan';
        const d = (delta) => (doubao ? { ...delta, role: 'assistant' } : delta);
        const frames = [this.chunk({ role: 'assistant', content: '' })];
        if (reasoning) {
            for (const p of splitWords(reasoning)) frames.push(this.chunk(d({ content: '', reasoning_content: p })));
        }
        if (text) for (const p of splitWords(text)) frames.push(this.chunk(d({ content: p })));
        toolCalls.forEach((tc, index) => {
            tc.id = tc.id || `call_${randAlnum(24)}`;
            const extra = doubao ? { content: '' } : {};
            frames.push(
                this.chunk(
                    d({
                        ...extra,
                        tool_calls: [{ index, id: tc.id, type: 'function', function: { name: tc.name, arguments: '' } }],
                    }),
                ),
            );
            for (const p of splitPieces(tc.arguments)) {
                const frag = hunyuan
                    ? { index, id: tc.id, type: 'function', function: { name: '', arguments: p } }
                    : { index, function: { arguments: p } };
                frames.push(this.chunk(d({ ...extra, tool_calls: [frag] })));
            }
        });
        const finishDelta = doubao ? { content: '', role: 'assistant' } : {};
        frames.push(this.chunk(finishDelta, finish || (toolCalls.length ? 'tool_calls' : 'stop')));
        if (this.usage) frames.push(this.usageChunk());
        frames.push('data: [DONE]\n\n');
        return frames;
    }

    respond(spec) {
        this.rec.sent = spec;
        this.play(this.completion(spec));
    }

    text(t) {
        this.respond({ text: t });
    }

    tools(calls) {
        const toolCalls = calls.map(([name, args]) => ({
            name,
            arguments: typeof args === 'string' ? args : JSON.stringify(args),
        }));
        this.respond({ toolCalls });
    }

    error(status, body, headers = {}) {
        this.rec.status = status;
        sendJson(this.res, status, body, headers);
    }
}

function finalAnswer(s, a) {
    s.text(toolFinalText(a.lastTool === null ? '(none)' : a.lastTool));
}

// Each scenario: (stream, analysis, attempt) -> writes one response. `a.step` counts the assistant
// messages after the last user message (0 for the first LLM call of a run).
const SCENARIOS = {
    // Plain text that echoes the query.
    text(s, a) {
        s.text(textReply(a.query));
    },
    // write_file, then read_file, then an answer quoting the read result.
    tool(s, a) {
        const path = a.params.path || 'hello.txt';
        if (a.step === 0) s.tools([['write_file', { path, content: FILE_CONTENT }]]);
        else if (a.step === 1) s.tools([['read_file', { path }]]);
        else finalAnswer(s, a);
    },
    // Two parallel write_file calls in one turn, then list_directory, then an answer.
    parallel(s, a) {
        if (a.step === 0) {
            s.tools([
                ['write_file', { path: 'a.txt', content: 'alpha' }],
                ['write_file', { path: 'b.txt', content: 'beta' }],
            ]);
        } else if (a.step === 1) s.tools([['list_directory', { path: '.' }]]);
        else finalAnswer(s, a);
    },
    // list_directory of "." then an answer quoting it.
    listdir(s, a) {
        if (a.step === 0) s.tools([['list_directory', { path: a.params.path || '.' }]]);
        else finalAnswer(s, a);
    },
    // read_file of a path, then an answer quoting it.
    readfile(s, a) {
        if (a.step === 0) s.tools([['read_file', { path: a.params.path || 'hello.txt' }]]);
        else finalAnswer(s, a);
    },
    // A tool the server does not have.
    unknown_tool(s, a) {
        if (a.step === 0) s.tools([['nonexistent_tool', { foo: 'bar' }]]);
        else finalAnswer(s, a);
    },
    // Path escapes: two reads in one turn, then a write outside the workspace, then an answer.
    escape(s, a) {
        if (a.step === 0) {
            s.tools([
                ['read_file', { path: '../../etc/passwd' }],
                ['read_file', { path: '/etc/passwd' }],
            ]);
        } else if (a.step === 1) s.tools([['write_file', { path: '../escaped.txt', content: 'pwned' }]]);
        else finalAnswer(s, a);
    },
    // Reasoning deltas then text.
    reasoning(s) {
        s.respond({ reasoning: REASONING_TEXT, text: REASONING_ANSWER });
    },
    // Many slow tokens: params n (count, default 100) and delay (ms per chunk, default 100).
    slow(s, a) {
        if (a.params.delay === undefined) s.delay = 100;
        const n = Number(a.params.n || 100);
        const words = [];
        for (let i = 0; i < n; i++) words.push(`w${i}`);
        s.text(words.join(' '));
    },
    // A quick tool call, then the next LLM call holds the request without answering for `hold` ms.
    toolthenhold(s, a) {
        if (a.step === 0) s.tools([['write_file', { path: 'before-abort.txt', content: 'x' }]]);
        else {
            const hold = Number(a.params.hold || 15000);
            s.later(hold, () => {
                if (!s.closed) s.text('held answer');
            });
        }
    },
    summary(s) {
        s.text(SUMMARY_TEXT);
    },
    // OpenAI's context-length error while the prompt is longer than `limit` characters, else text.
    ctxlimit(s, a) {
        const size = JSON.stringify(s.rec.body.messages).length;
        if (size > Number(a.params.limit || 4000)) {
            s.error(400, {
                error: {
                    message: `This model's maximum context length is 1000 tokens. However, your messages resulted in ${Math.ceil(size / 4)} tokens. Please reduce the length of the messages.`,
                    type: 'invalid_request_error',
                    param: 'messages',
                    code: 'context_length_exceeded',
                },
            });
        } else s.text(textReply(a.query));
    },
    // Text cut off by max_tokens.
    length(s, a) {
        s.respond({ text: textReply(a.query), finish: 'length' });
    },
    // Always asks for another tool call.
    endless(s) {
        s.tools([['list_directory', { path: '.' }]]);
    },
    auth401(s) {
        s.error(401, OPENAI_401_BODY);
    },
    // `n` (default 1) attempts answered 429 with retry-after `ra` seconds (default 1), then text.
    rate429(s, a, attempt) {
        const n = Number(a.params.n || 1);
        if (attempt <= n) {
            const headers = {};
            if (a.params.ms !== undefined) headers['retry-after-ms'] = String(a.params.ms);
            else headers['retry-after'] = String(a.params.ra || 1);
            s.error(
                429,
                {
                    error: {
                        message: 'Rate limit reached for requests',
                        type: 'requests',
                        param: null,
                        code: 'rate_limit_exceeded',
                    },
                },
                headers,
            );
        } else s.text(textReply(a.query));
    },
    err500(s) {
        s.error(500, { error: { message: OPENAI_500_MESSAGE, type: 'server_error', param: null, code: null } });
    },
    // Headers and a few chunks, then the socket is destroyed.
    drop(s) {
        const frames = s.completion({ text: 'This stream will be cut off before it ends properly' });
        s.play(frames.slice(0, 4), 'destroy');
    },
    // An error object inside a 200 stream.
    streamerror(s) {
        const frames = s.completion({ text: 'partial text' }).slice(0, 2);
        frames.push(
            `data: ${JSON.stringify({ error: { message: STREAM_ERROR_MESSAGE, type: 'server_error', param: null, code: null } })}\n\n`,
        );
        s.play(frames, 'end');
    },
    // Headers and one chunk, then silence.
    stall(s) {
        const frames = s.completion({ text: 'never finished' });
        s.play(frames.slice(0, 1), 'stall');
    },
};

/** Lets other test files plug in scenarios of their own (keyed by marker name). */
export function addScenarios(obj) {
    Object.assign(SCENARIOS, obj);
}
