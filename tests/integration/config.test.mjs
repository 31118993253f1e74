// SPDX-License-Identifier: MIT
// Command line and configuration: --help, unknown flags, --key=value, the listening line, config
// files with dotted-flag overrides, environment-variable API keys and base URLs, OPENAI_* fallbacks,
// request options, and clean exits on SIGTERM / SIGINT.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe } from 'node:test';
import { startFakeOpenAI, textReply } from './lib/fake-openai.mjs';
import {
    TARS_BIN,
    cleanup,
    createSession,
    get,
    ofType,
    post,
    q,
    startServer,
    streamQuery,
    tempDir,
    test,
} from './lib/server.mjs';

let fake;

before(async () => {
    fake = await startFakeOpenAI();
});
after(() => cleanup(fake));

function runSync(args, env = {}) {
    const e = { ...process.env, ...env };
    delete e.OPENAI_API_KEY;
    delete e.OPENAI_BASE_URL;
    return spawnSync(TARS_BIN, args, { env: e, encoding: 'utf8', timeout: 10000 });
}

describe('command line', () => {
    test('--help prints the flags and exits 0', () => {
        const r = runSync(['--help']);
        assert.equal(r.status, 0, r.stderr);
        const text = r.stdout + r.stderr;
        for (const flag of ['--port', '--host', '--workspace', '--model.baseURL', '--model.apiKey', '--model.id', '--config', '--maxIterations', '--isolate-sessions']) {
            assert.ok(text.includes(flag), `--help mentions ${flag}`);
        }
    });

    test('an unknown flag -> message on stderr, exit 2', () => {
        const r = runSync(['--definitely-not-a-flag', '1', '--port', '0']);
        assert.equal(r.status, 2, `exit ${r.status}, stderr ${r.stderr}`);
        assert.ok(r.stderr.includes('definitely-not-a-flag'), r.stderr);
        assert.equal(r.stdout.includes('listening on'), false);
    });

    test('exactly one stdout line: "agent-tars-server listening on http://HOST:PORT"', async () => {
        const s = await startServer({ fake });
        try {
            assert.match(s.stdout, /^agent-tars-server listening on http:\/\/127\.0\.0\.1:\d+\n$/);
            assert.ok(s.port > 0);
            assert.equal((await get(s, '/api/v1/health')).status, 200);
        } finally {
            await s.stop();
        }
        assert.equal(s.stdout.split('\n').filter(Boolean).length, 1, `stdout: ${s.stdout}`);
    });

    test('--key=value form', async () => {
        const ws = tempDir('tars-ws-');
        const s = await startServer({
            noDefaults: true,
            args: ['--port=0', '--host=127.0.0.1', `--workspace=${ws}`, '--model.provider=openai-compatible', '--model.id=eq-model',
                `--model.baseURL=${fake.baseURL}`, '--model.apiKey=eq-key', '--isolate-sessions'],
        });
        try {
            const sid = await createSession(s);
            assert.ok(fs.statSync(path.join(ws, sid)).isDirectory());
            const query = q('text', 'equals form');
            const r = await post(s, '/api/sessions/query', { sessionId: sid, query });
            assert.equal(r.status, 200, r.text);
            assert.equal(r.json.result.content, textReply(query));
            const [rec] = fake.requestsMatching(query);
            assert.equal(rec.body.model, 'eq-model');
            assert.equal(rec.headers.authorization, 'Bearer eq-key');
        } finally {
            await s.stop();
        }
    });

    test('--maxTokens and --temperature reach the model request', async () => {
        const s = await startServer({ fake, args: ['--maxTokens', '1234', '--temperature', '0.25'] });
        try {
            const sid = await createSession(s);
            const query = q('text');
            await post(s, '/api/sessions/query', { sessionId: sid, query });
            const [rec] = fake.requestsMatching(query);
            assert.equal(rec.body.max_tokens, 1234);
            assert.equal(rec.body.temperature, 0.25);
        } finally {
            await s.stop();
        }
    });

    test('SIGINT exits cleanly with 0', async () => {
        const s = await startServer({ fake });
        await s.stop('SIGINT');
    });

    test('SIGTERM during an active stream exits cleanly with 0', async () => {
        const s = await startServer({ fake });
        const sid = await createSession(s);
        const query = q('slow delay=100 n=100');
        const streaming = streamQuery(s, sid, query).catch((e) => e);
        await fake.waitForRequest((r) => r.query === query, 5000);
        await s.stop('SIGTERM');
        await streaming;
    });
});

describe('config file', () => {
    function writeConfig(obj) {
        const dir = tempDir('tars-cfg-');
        const file = path.join(dir, 'config.json');
        fs.writeFileSync(file, JSON.stringify(obj));
        return file;
    }

    test('model, maxIterations and workspace from --config; a dotted flag overrides the file', async () => {
        const ws = tempDir('tars-ws-');
        const file = writeConfig({
            model: { provider: 'openai-compatible', id: 'm', baseURL: fake.baseURL, apiKey: 'k' },
            maxIterations: 2,
            workspace: { workingDirectory: ws, isolateSessions: true },
        });
        const s = await startServer({ noDefaults: true, args: ['--port', '0', '--host', '127.0.0.1', '--config', file, '--model.id', 'other'] });
        try {
            const sid = await createSession(s);
            assert.ok(fs.statSync(path.join(ws, sid)).isDirectory(), 'isolateSessions from the file');
            const query = q('endless');
            const out = await streamQuery(s, sid, query);
            const reqs = fake.requestsMatching(query);
            assert.equal(reqs.length, 2, 'maxIterations 2 from the file');
            assert.equal(reqs[0].body.model, 'other', '--model.id overrides the file');
            assert.equal(reqs[0].headers.authorization, 'Bearer k');
            const sys = ofType(out.events, 'system');
            assert.equal(sys.at(-1).message, 'Maximum iterations reached (2), forcing termination');
            assert.equal(out.events[1].model, 'other');
        } finally {
            await s.stop();
        }
    });

    test('without overrides the file model id is used', async () => {
        const ws = tempDir('tars-ws-');
        const file = writeConfig({
            model: { provider: 'openai-compatible', id: 'file-model', baseURL: fake.baseURL, apiKey: 'k2' },
            workspace: { workingDirectory: ws },
        });
        const s = await startServer({ noDefaults: true, args: ['--port', '0', '--host', '127.0.0.1', '--config', file] });
        try {
            const sid = await createSession(s);
            const query = q('tool path=from-config.txt');
            await post(s, '/api/sessions/query', { sessionId: sid, query });
            const reqs = fake.requestsMatching(query);
            assert.equal(reqs[0].body.model, 'file-model');
            assert.equal(reqs[0].headers.authorization, 'Bearer k2');
            assert.ok(fs.existsSync(path.join(ws, 'from-config.txt')), 'workingDirectory from the file');
        } finally {
            await s.stop();
        }
    });

    test('a missing or invalid config file is an error at start-up', () => {
        const r1 = runSync(['--port', '0', '--config', '/nonexistent/dir/config.json']);
        assert.notEqual(r1.status, 0);
        assert.ok(r1.stderr.length > 0);
        const dir = tempDir('tars-cfg-');
        const bad = path.join(dir, 'bad.json');
        fs.writeFileSync(bad, '{"model": {');
        const r2 = runSync(['--port', '0', '--config', bad]);
        assert.notEqual(r2.status, 0);
        assert.ok(r2.stderr.length > 0);
    });
});

describe('environment', () => {
    test('--model.apiKey NAME reads the key from $NAME', async () => {
        const s = await startServer({
            args: ['--model.provider', 'openai-compatible', '--model.id', 'env-model', '--model.baseURL', fake.baseURL, '--model.apiKey', 'MY_TEST_KEY'],
            env: { MY_TEST_KEY: 'sk-from-env-123' },
        });
        try {
            const sid = await createSession(s);
            const query = q('text');
            const r = await post(s, '/api/sessions/query', { sessionId: sid, query });
            assert.equal(r.status, 200, r.text);
            assert.equal(fake.requestsMatching(query)[0].headers.authorization, 'Bearer sk-from-env-123');
        } finally {
            await s.stop();
        }
        assert.ok(!s.stderr.includes('sk-from-env-123') && !s.stdout.includes('sk-from-env-123'));
    });

    test('--model.baseURL NAME reads the URL from $NAME', async () => {
        const s = await startServer({
            args: ['--model.provider', 'openai-compatible', '--model.id', 'm', '--model.baseURL', 'MY_FAKE_URL', '--model.apiKey', 'k'],
            env: { MY_FAKE_URL: fake.baseURL },
        });
        try {
            const sid = await createSession(s);
            const query = q('text');
            const r = await post(s, '/api/sessions/query', { sessionId: sid, query });
            assert.equal(r.status, 200, r.text);
            assert.equal(fake.requestsMatching(query).length, 1);
        } finally {
            await s.stop();
        }
    });

    test('OPENAI_API_KEY / OPENAI_BASE_URL are fallbacks', async () => {
        const s = await startServer({
            args: ['--model.id', 'fallback-model'],
            env: { OPENAI_API_KEY: 'sk-fallback-456', OPENAI_BASE_URL: fake.baseURL },
        });
        try {
            const sid = await createSession(s);
            const query = q('text');
            const r = await post(s, '/api/sessions/query', { sessionId: sid, query });
            assert.equal(r.status, 200, r.text);
            const [rec] = fake.requestsMatching(query);
            assert.equal(rec.headers.authorization, 'Bearer sk-fallback-456');
            assert.equal(rec.body.model, 'fallback-model');
        } finally {
            await s.stop();
        }
    });
});
