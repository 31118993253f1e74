// SPDX-License-Identifier: MIT
// A fake OpenAI-compatible model without function calling, for the prompt-engineering engine:
// it streams chat.completion.chunk frames whose text holds <tool_call>{"name","parameters"}
// blocks, as models prompted with the <tool_instruction> block do (the closing tag is usually
// cut off by the stop sequence). The scenario comes from a "[[scenario:NAME k=v]]" marker in the
// user's query; tool results come back as user messages "Tool: <name>\nResult:\n<text>".

import http from 'node:http';

const MARKER_RE = /\[\[scenario:([^\]]*)\]\]/;

export const PE_FILE_CONTENT = 'written by a prompt-engineered call';

export function peFinalText(lastUser) {
    return `Done. I was told: ${lastUser}`;
}

function text(content) {
    if (typeof content === 'string') return content;
    if (Array.isArray(content)) return content.map((p) => (p && p.type === 'text' ? p.text : '')).join('');
    return '';
}

export function analyze(messages) {
    let qi = -1;
    for (let i = 0; i < messages.length; i++) if (messages[i].role === 'user' && MARKER_RE.test(text(messages[i].content))) qi = i;
    const query = qi >= 0 ? text(messages[qi].content) : '';
    let step = 0;
    for (let i = qi + 1; i < messages.length; i++) if (messages[i].role === 'assistant') step++;
    const m = MARKER_RE.exec(query);
    const words = m ? m[1].trim().split(/\s+/) : ['pe_text'];
    const params = {};
    for (const w of words.slice(1)) {
        const eq = w.indexOf('=');
        if (eq > 0) params[w.slice(0, eq)] = w.slice(eq + 1);
    }
    const last = messages[messages.length - 1];
    return { name: words[0], params, query, step, lastUser: last && last.role === 'user' ? text(last.content) : '' };
}

export const PE_TEXT = 'Compare: 1 < 2, <b>bold</b> and <tool_calls> are just text.';

const SCENARIOS = {
    pe_text: () => ({ content: PE_TEXT }),
    // write_file cut off by the stop sequence, read_file with its closing tag, then an answer.
    pe_tool(a) {
        const p = a.params.path || 'pe.txt';
        if (a.step === 0) {
            return {
                content: `I'll write it.\n<tool_call>\n{\n  "name": "write_file",\n  "parameters": {"path": "${p}", "content": "${PE_FILE_CONTENT}"}\n}\n`,
            };
        }
        if (a.step === 1) return { content: `<tool_call>{"name":"read_file","parameters":{"path":"${p}"}}</tool_call>` };
        return { content: peFinalText(a.lastUser) };
    },
    // Two calls in one reply, then an answer.
    pe_two(a) {
        if (a.step === 0) {
            return {
                content:
                    'Two files.\n<tool_call>\n{"name": "write_file", "parameters": {"path": "one.txt", "content": "1"}}\n</tool_call>\n' +
                    '<tool_call>\n{"name": "write_file", "parameters": {"path": "two.txt", "content": "2"}}\n',
            };
        }
        return { content: peFinalText(a.lastUser) };
    },
    // Malformed parameters: the agent answers with an error result, then we answer.
    pe_bad(a) {
        if (a.step === 0) return { content: '<tool_call>{"name": "read_file", "parameters": {"path": }}</tool_call>' };
        return { content: peFinalText(a.lastUser) };
    },
};

function pieces(s) {
    const sizes = [3, 5, 7, 4, 6, 2];
    const out = [];
    for (let i = 0, k = 0; i < s.length; k++) {
        out.push(s.slice(i, i + sizes[k % sizes.length]));
        i += sizes[k % sizes.length];
    }
    return out;
}

/** Starts the fake; returns { baseURL, requests, requestsMatching(needle), close }. */
export async function startFakePE() {
    const requests = [];
    const sockets = new Set();
    const server = http.createServer((req, res) => {
        const chunks = [];
        req.on('data', (c) => chunks.push(c));
        req.on('end', () => {
            const rec = { url: req.url, headers: req.headers, body: null, query: '' };
            requests.push(rec);
            try {
                rec.body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
            } catch {
                res.writeHead(400).end();
                return;
            }
            const a = analyze(rec.body.messages || []);
            Object.assign(rec, { scenario: a.name, step: a.step, query: a.query });
            const scenario = SCENARIOS[a.name];
            if (!scenario) {
                res.writeHead(400, { 'content-type': 'application/json' });
                res.end(JSON.stringify({ error: { message: `fake-pe: unknown scenario ${a.name}` } }));
                return;
            }
            const { content } = scenario(a);
            rec.sent = content;
            const id = `chatcmpl-pe${requests.length}`;
            const chunk = (delta, finish = null) =>
                `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created: 1, model: rec.body.model, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
            const frames = [chunk({ role: 'assistant', content: '' }), ...pieces(content).map((p) => chunk({ content: p })), chunk({}, 'stop'), 'data: [DONE]\n\n'];
            res.writeHead(200, { 'content-type': 'text/event-stream' });
            let i = 0;
            const next = () => {
                if (res.destroyed) return;
                if (i < frames.length) {
                    res.write(frames[i++]);
                    setImmediate(next);
                } else res.end();
            };
            next();
        });
    });
    server.on('connection', (s) => {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
    });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = server.address().port;
    return {
        port,
        baseURL: `http://127.0.0.1:${port}/v1`,
        requests,
        requestsMatching: (needle) => requests.filter((r) => r.query.includes(needle)),
        close: async () => {
            for (const s of sockets) s.destroy();
            await new Promise((resolve) => server.close(resolve));
        },
    };
}
