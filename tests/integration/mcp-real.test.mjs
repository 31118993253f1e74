// SPDX-License-Identifier: MIT
// The real npm MCP servers (@modelcontextprotocol/server-filesystem and
// @agent-infra/mcp-server-commands, from the repository's package.json), started by the binary
// from the mcpServers of its --config, and driven through a scripted model: their tools are
// offered under their own names, results reach the model as the original sends them
// (JSON.stringify(content, null, 2) in the tool message), isError results are errors, and every
// server process is gone after a stop.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe } from 'node:test';
import { startFakeOpenAI } from './lib/fake-openai.mjs';
import { cleanup, createSession, ofType, startServer, streamQuery, tempDir, test } from './lib/server.mjs';
import { addMcpScenario, allGone, mcpPids, mcpQuery, toolMessages, toolMessageText, writeConfig } from './mcp-helpers.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN_FS = path.join(ROOT, 'node_modules/.bin/mcp-server-filesystem');
const BIN_CMD = path.join(ROOT, 'node_modules/.bin/mcp-server-commands');
const missing = [BIN_FS, BIN_CMD].filter((b) => !fs.existsSync(b));

addMcpScenario();

/** Runs one query and returns { events, calls, results, final, tools (tool messages seen) }. */
async function run(fake, srv, calls) {
    const sid = await createSession(srv);
    const query = mcpQuery(calls);
    const out = await streamQuery(srv, sid, query, { timeoutMs: 30000 });
    assert.equal(out.status, 200);
    const events = out.events;
    const final = ofType(events, 'assistant_message').at(-1);
    return {
        events,
        calls: ofType(events, 'tool_call'),
        results: ofType(events, 'tool_result'),
        final: final && final.content,
        tools: toolMessages(fake, query),
    };
}

describe('real MCP servers from npm', { skip: missing.length ? `npm packages not installed: ${missing.join(', ')} (run npm ci)` : false }, () => {
    let fake;
    let srv;
    let ws;

    before(async () => {
        fake = await startFakeOpenAI();
        ws = fs.realpathSync(tempDir('tars-mcp-ws-'));
        fs.writeFileSync(path.join(ws, 'hello.txt'), 'hello from ws\n');
        const config = writeConfig({
            mcpServers: {
                filesystem: { command: BIN_FS, args: [ws] },
                commands: { command: BIN_CMD, args: [] },
            },
        });
        srv = await startServer({ fake, workspace: ws, args: ['--config', config] });
    });

    after(async () => {
        await cleanup(srv, fake);
    });

    test('both servers start and their tools are offered under their own names', async () => {
        const r = await run(fake, srv, [['list_allowed_directories', {}]]);
        const req = fake.requestsMatching('mcpcall').at(-1); // no images here: the marker is in the last user message
        const names = req.body.tools.map((t) => t.function.name);
        for (const n of ['read_text_file', 'list_directory_with_sizes', 'run_command', 'run_script']) assert.ok(names.includes(n), `${n} in ${names}`);
        const rc = req.body.tools.find((t) => t.function.name === 'run_command');
        assert.match(rc.function.description, /^\[commands\] /);
        assert.equal(rc.function.parameters.type, 'object');
        assert.ok(rc.function.parameters.properties.command);
        assert.equal(r.results.length, 1);
        assert.equal(r.results[0].error, undefined);
        assert.match(JSON.stringify(r.results[0].content), new RegExp(ws.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
    });

    test('read_text_file: the MCP content array, stringified for the model as the original does', async () => {
        const r = await run(fake, srv, [['read_text_file', { path: path.join(ws, 'hello.txt') }]]);
        assert.equal(r.calls[0].name, 'read_text_file');
        const res = r.results[0];
        assert.equal(res.error, undefined);
        assert.deepEqual(res.content, [{ type: 'text', text: 'hello from ws\n' }]);
        assert.equal(r.tools.length, 1);
        assert.equal(r.tools[0].content, toolMessageText(res.content));
        assert.ok(r.final.includes('"text": "hello from ws\\n"'), r.final);
    });

    test('an isError result is an error result', async () => {
        const r = await run(fake, srv, [['read_text_file', { path: '/etc/passwd' }]]);
        const res = r.results[0];
        assert.match(res.error, /Access denied - path outside allowed directories: \/etc\/passwd not in /);
        assert.equal(res.content, `Error: ${res.error}`);
        assert.equal(r.tools[0].content, res.content);
    });

    test('run_command: STDOUT and STDERR parts, and a failing command', async () => {
        const r = await run(fake, srv, [
            ['run_command', { command: 'echo out; echo err >&2', cwd: ws }],
            ['run_command', { command: 'exit 3', cwd: ws }],
        ]);
        assert.equal(r.results.length, 2);
        assert.deepEqual(r.results[0].content, [
            { type: 'text', text: 'out\n', name: 'STDOUT' },
            { type: 'text', text: 'err\n', name: 'STDERR' },
        ]);
        assert.equal(r.results[0].error, undefined);
        assert.match(r.results[1].error, /Command failed: exit 3/);
        assert.equal(r.tools[0].content, toolMessageText(r.results[0].content));
    });

    test('run_script pipes the script to the interpreter', async () => {
        const r = await run(fake, srv, [['run_script', { interpreter: 'node', script: 'console.log(6 * 7)', cwd: ws }]]);
        assert.deepEqual(r.results[0].content, [{ type: 'text', text: '42\n', name: 'STDOUT' }]);
    });

    test('write then read through the filesystem server', async () => {
        const file = path.join(ws, 'made-by-mcp.txt');
        const r = await run(fake, srv, [
            ['write_file', { path: file, content: 'written\nby mcp' }],
            ['read_text_file', { path: file }],
        ]);
        assert.equal(r.results[0].error, undefined);
        assert.equal(fs.readFileSync(file, 'utf8'), 'written\nby mcp');
        assert.deepEqual(r.results[1].content, [{ type: 'text', text: 'written\nby mcp' }]);
    });

    test('every server process is gone after the binary stops', async () => {
        const pids = Object.values(mcpPids(srv)).flat();
        assert.ok(pids.length >= 2, `server pids from the log: ${JSON.stringify(mcpPids(srv))}`);
        await srv.stop();
        assert.ok(await allGone(pids), `still alive: ${pids}`);
    });
});
