// SPDX-License-Identifier: MIT
// MCP failure paths through the binary, with the scriptable fake server of
// tests/fixtures/mcp/fake-server.mjs: a server that crashes mid-call (error result, restarted
// for the next call of the same run), a tool that outlives the call timeout, an abort that
// reaches the server as notifications/cancelled, an image result (image_url in a user message
// after the tool message, as the original's native engine), debug lines on stdout, and a
// Streamable HTTP server answering with SSE.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe } from 'node:test';
import { startFakeOpenAI } from './lib/fake-openai.mjs';
import { cleanup, createSession, ofType, post, startServer, streamQuery, tempDir, test, waitFor } from './lib/server.mjs';
import { addMcpScenario, allGone, mcpPids, mcpQuery, requestsOf, toolMessages, toolMessageText, writeConfig } from './mcp-helpers.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const FAKE_MCP = path.join(ROOT, 'tests/fixtures/mcp/fake-server.mjs');
const PNG_B64 = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=';

addMcpScenario();

function readLog(file) {
    if (!fs.existsSync(file)) return [];
    return fs
        .readFileSync(file, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l));
}

describe('MCP failure paths (fake server)', () => {
    let fake;
    let srv;
    let log;

    before(async () => {
        fake = await startFakeOpenAI();
        log = path.join(tempDir('tars-mcp-log-'), 'fake.jsonl');
        const config = writeConfig({
            mcp: { callTimeoutMs: 1500 },
            mcpServers: {
                fake: { command: process.execPath, args: [FAKE_MCP, '--debug-lines'], env: { FAKE_MCP_LOG: log } },
            },
        });
        srv = await startServer({ fake, args: ['--config', config] });
    });

    after(async () => {
        await cleanup(srv, fake);
    });

    async function run(calls, opts = {}) {
        const sid = await createSession(srv);
        const query = mcpQuery(calls);
        const out = await streamQuery(srv, sid, query, { timeoutMs: 20000, ...opts });
        return { out, sid, query, results: ofType(out.events, 'tool_result'), tools: toolMessages(fake, query) };
    }

    test('a result passes through, debug lines on stdout notwithstanding', async () => {
        const r = await run([['echo', { text: 'hi there' }]]);
        assert.equal(r.out.status, 200);
        assert.deepEqual(r.results[0].content, [{ type: 'text', text: 'hi there' }]);
        assert.equal(r.tools[0].content, toolMessageText(r.results[0].content));
        const m = requestsOf(fake, r.query)[0];
        const echo = m.body.tools.find((t) => t.function.name === 'echo');
        assert.equal(echo.function.description, '[fake] Echoes the text back');
    });

    test('a server that crashes mid-call: error result, then restarted for the next call', async () => {
        const before = mcpPids(srv).fake.length;
        const r = await run([
            ['crash', {}],
            ['pid', {}],
        ]);
        assert.equal(r.results.length, 2);
        assert.equal(r.results[0].error, 'Failed to execute tool crash: MCP error -32000: Connection closed');
        assert.equal(r.results[0].content, `Error: ${r.results[0].error}`);
        assert.equal(r.results[1].error, undefined);
        const pids = mcpPids(srv).fake;
        assert.equal(pids.length, before + 1);
        assert.equal(Number(r.results[1].content[0].text), pids.at(-1));
        assert.match(srv.stderr, /mcp server 'fake' lost: exited with code 3/);
        assert.match(srv.stderr, /fake: crashing on purpose/); /* its stderr tail is logged */
    });

    test('a tool that outlives the call timeout ends with an error, the server is told', async () => {
        const t0 = Date.now();
        const r = await run([['sleep', { ms: 8000 }]]);
        assert.ok(Date.now() - t0 < 6000);
        assert.equal(r.results[0].error, 'Failed to execute tool sleep: MCP error -32001: Request timed out');
        await waitFor(() => readLog(log).some((m) => m.method === 'notifications/cancelled' && m.params.reason === 'Request timed out'), {
            what: 'notifications/cancelled',
        });
    });

    test('abort during a call sends notifications/cancelled', async () => {
        const sid = await createSession(srv);
        const query = mcpQuery([['sleep', { ms: 15000 }]]);
        const callsBefore = readLog(log).filter((m) => m.method === 'tools/call').length;
        const stream = streamQuery(srv, sid, query, {
            timeoutMs: 20000,
            onEvent: async (ev) => {
                if (ev.type === 'tool_call') {
                    await waitFor(() => readLog(log).filter((m) => m.method === 'tools/call').length > callsBefore, { what: 'the call' });
                    const res = await post(srv, '/api/sessions/abort', { sessionId: sid });
                    assert.equal(res.status, 200);
                }
            },
        });
        const out = await stream;
        assert.equal(out.status, 200);
        const call = readLog(log)
            .filter((m) => m.method === 'tools/call')
            .at(-1);
        await waitFor(() => readLog(log).some((m) => m.method === 'notifications/cancelled' && m.params.requestId === call.id && m.params.reason === 'aborted'), {
            what: 'notifications/cancelled for the aborted call',
        });
    });

    test('an image result: JSON text in the tool message, the image in a user message after it', async () => {
        const r = await run([['image', {}]]);
        assert.equal(r.results[0].content[1].type, 'image');
        const req = requestsOf(fake, r.query).at(-1);
        const msgs = req.body.messages;
        const i = msgs.findIndex((m) => m.role === 'tool');
        assert.equal(msgs[i].content, JSON.stringify([{ type: 'text', text: 'Screenshot taken' }], null, 2));
        assert.equal(msgs[i + 1].role, 'user');
        assert.deepEqual(msgs[i + 1].content, [{ type: 'image_url', image_url: { url: `data:image/png;base64,${PNG_B64}` } }]);
    });

    test('no server process is left after the binary stops', async () => {
        const pids = mcpPids(srv).fake;
        await srv.stop();
        assert.ok(await allGone(pids), `still alive: ${pids}`);
    });
});

describe('Streamable HTTP MCP server', () => {
    let fake;
    let srv;
    let http;

    before(async () => {
        fake = await startFakeOpenAI();
        const dir = tempDir('tars-mcp-http-');
        const portFile = path.join(dir, 'port');
        http = spawn(process.execPath, [FAKE_MCP, '--http', '--port-file', portFile, '--log', path.join(dir, 'log.jsonl')], { stdio: 'ignore' });
        await waitFor(() => fs.existsSync(portFile), { what: 'the HTTP fake' });
        const port = Number(fs.readFileSync(portFile, 'utf8'));
        const config = writeConfig({ mcpServers: { web: { url: `http://127.0.0.1:${port}/mcp`, headers: { 'X-Custom': 'it' } } } });
        srv = await startServer({ fake, args: ['--config', config] });
    });

    after(async () => {
        http.kill('SIGTERM');
        await cleanup(srv, fake);
    });

    test('JSON and SSE answers, session and custom headers', async () => {
        const sid = await createSession(srv);
        const query = mcpQuery([
            ['echo', { text: 'json' }],
            ['echo_sse', { text: 'sse' }],
            ['headers', {}],
        ]);
        const out = await streamQuery(srv, sid, query, { timeoutMs: 20000 });
        const results = ofType(out.events, 'tool_result');
        assert.deepEqual(results[0].content, [{ type: 'text', text: 'json' }]);
        assert.deepEqual(results[1].content, [{ type: 'text', text: 'sse' }]);
        const h = JSON.parse(results[2].content[0].text);
        assert.match(h['mcp-session-id'], /^sess-/);
        assert.equal(h['mcp-protocol-version'], '2025-06-18');
        assert.equal(h['x-custom'], 'it');
    });
});
