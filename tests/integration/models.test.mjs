// SPDX-License-Identifier: MIT
// Issue 18: the model catalogue and a session's model choice. Two fake OpenAI-compatible
// servers on different ports and a fake Anthropic: GET /api/v1/models lists the default model,
// server.models and model.providers without a secret; POST /api/v1/sessions/model validates
// against it (the original's errors), and the session's next run -- over the v1 routes, the
// seed's routes and Socket.IO, and after a restart -- goes to that model's endpoint with its key,
// headers and params, while a run already going keeps its model. Then the providers with their
// own wire: azure-openai (deployment URL, api-key header) and openai-non-streaming (one
// unstreamed request, the answer as one delta). Last, the embedded UI's model picker in chromium.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe } from 'node:test';
import { ANTHROPIC_KEY, claudeTextReply, startFakeAnthropic } from './lib/fake-anthropic.mjs';
import { REASONING_ANSWER, REASONING_TEXT, addScenarios, startFakeOpenAI, textReply } from './lib/fake-openai.mjs';
import { closeAll, connectClient, emitAck, runEnded, until } from './lib/sio-client.mjs';
import { TEST_API_KEY, cleanup, get, post, q, startServer, tempDir, test } from './lib/server.mjs';
import { SKIP_REASON, assertClean, currentSessionId, launchBrowser, openPage, sel, sendMessage, waitStatus } from './lib/ui-browser.mjs';

const KEY_B = 'sk-fake-MODEL-B-91c3e5a7';
const KEY_H = 'sk-fake-MODEL-H-44d0b2f8';
const KEY_P = 'sk-fake-PROVIDERS-6a1f';
const SECRETS = [TEST_API_KEY, KEY_B, KEY_H, KEY_P, ANTHROPIC_KEY];

/** Asserts that no secret (nor a baseURL/apiKey member) is in a response text. */
function noSecrets(text, what, { masked = false } = {}) {
    for (const s of SECRETS) assert.ok(!text.includes(s), `${what} leaks a key`);
    if (!masked) assert.ok(!/apiKey|baseURL|"headers"|"params"/.test(text), `${what} shows a model's config`);
}

async function v1Query(srv, sessionId, query) {
    const r = await post(srv, '/api/v1/sessions/query', { sessionId, query });
    assert.equal(r.status, 200, r.text);
    return r.json;
}

const bearer = (rec) => rec.headers.authorization;

describe('model catalogue and per-session choice', () => {
    let fakeA;
    let fakeB;
    let anth;
    let srv;
    let srv2;
    const env = { MODELS_TEST_KEY_B: KEY_B };

    before(async () => {
        fakeA = await startFakeOpenAI();
        fakeB = await startFakeOpenAI();
        anth = await startFakeAnthropic();
        const dir = tempDir('tars-models-');
        const config = {
            server: {
                models: [
                    { provider: 'openai-compatible', id: 'model-b', displayName: 'Model B', baseURL: fakeB.baseURL, apiKey: 'MODELS_TEST_KEY_B' },
                    { provider: 'anthropic', id: 'claude-fake', displayName: 'Claude (fake)', baseURL: anth.baseURL, apiKey: ANTHROPIC_KEY },
                    {
                        provider: 'openai-compatible',
                        id: 'model-h',
                        baseURL: fakeB.baseURL,
                        apiKey: KEY_H,
                        headers: { 'X-Team': 'blue' },
                        params: { top_p: 0.25, seed: 7 },
                    },
                    { provider: 'deepseek', id: 'deepseek-fake', baseURL: fakeB.baseURL, apiKey: KEY_B },
                    { provider: 'openai-compatible', id: 'fake-model', baseURL: 'http://127.0.0.1:9/v1' }, // duplicate id: dropped
                ],
            },
            model: { providers: [{ name: 'openai-compatible', baseURL: fakeB.baseURL, apiKey: KEY_P, models: ['model-p', { id: 'model-b' }] }] },
        };
        const file = path.join(dir, 'models.json');
        fs.writeFileSync(file, JSON.stringify(config));
        srv = await startServer({ fake: fakeA, args: ['--config', file], env });
    });
    after(() => cleanup(srv, srv2, fakeA, fakeB, anth));

    test('GET /api/v1/models lists the default, server.models and model.providers, without secrets', async () => {
        const r = await get(srv, '/api/v1/models');
        assert.equal(r.status, 200);
        assert.deepEqual(r.json, {
            models: [
                { id: 'fake-model', provider: 'openai-compatible' },
                { id: 'model-b', provider: 'openai-compatible', displayName: 'Model B' },
                { id: 'claude-fake', provider: 'anthropic', displayName: 'Claude (fake)' },
                { id: 'model-h', provider: 'openai-compatible' },
                { id: 'deepseek-fake', provider: 'deepseek' },
                { id: 'model-p', provider: 'openai-compatible' },
            ],
        });
        noSecrets(r.text, 'GET /api/v1/models');
        const opts = await get(srv, '/api/v1/agent/options');
        noSecrets(opts.text, 'GET /api/v1/agent/options', { masked: true }); // a masked key, as the original
    });

    test('validation: the original errors and codes', async () => {
        const c = await post(srv, '/api/v1/sessions/create', {});
        const sessionId = c.json.sessionId;
        let r = await post(srv, '/api/v1/sessions/model', { sessionId, model: { provider: 'openai-compatible', id: 'nope' } });
        assert.deepEqual([r.status, r.json.error], [400, 'Invalid model configuration']);
        r = await post(srv, '/api/v1/sessions/model', { sessionId, model: { provider: 'anthropic', id: 'model-b' } });
        assert.deepEqual([r.status, r.json.error], [400, 'Invalid model configuration']);
        r = await post(srv, '/api/v1/sessions/model', { sessionId, model: { id: 'model-b' } });
        assert.deepEqual([r.status, r.json.error], [400, 'Missing required parameters: sessionId, model (with provider and id)']);
        r = await post(srv, '/api/v1/sessions/model', { sessionId: 'nope-nope-nope-nope-x', model: { provider: 'openai-compatible', id: 'model-b' } });
        assert.equal(r.status, 404);
        r = await post(srv, '/api/v1/sessions/model', { model: { provider: 'openai-compatible', id: 'model-b' } });
        assert.equal(r.status, 400);
    });

    test('a session switched to model B sends its next runs to B with B key; other sessions stay on A', async () => {
        const one = (await post(srv, '/api/v1/sessions/create', {})).json;
        const two = (await post(srv, '/api/v1/sessions/create', {})).json;
        assert.deepEqual(one.session.metadata.modelConfig, { provider: 'openai-compatible', id: 'fake-model' });
        const qa = q('text', 'first on A');
        await v1Query(srv, one.sessionId, qa);
        assert.equal(bearer(fakeA.requestsMatching(qa)[0]), `Bearer ${TEST_API_KEY}`);

        // The original UI posts the whole entry of GET /models.
        const sw = await post(srv, '/api/v1/sessions/model', {
            sessionId: one.sessionId,
            model: { id: 'model-b', provider: 'openai-compatible', displayName: 'Model B' },
        });
        assert.equal(sw.status, 200, sw.text);
        assert.equal(sw.json.success, true);
        assert.deepEqual(sw.json.sessionInfo.metadata.modelConfig, { id: 'model-b', provider: 'openai-compatible', displayName: 'Model B' });
        noSecrets(sw.text, 'POST /api/v1/sessions/model');

        const qb = q('text', 'then on B');
        const res = await v1Query(srv, one.sessionId, qb);
        assert.equal(res.result.content, textReply(qb));
        assert.equal(fakeA.requestsMatching(qb).length, 0);
        const recB = fakeB.requestsMatching(qb)[0];
        assert.equal(recB.body.model, 'model-b');
        assert.equal(bearer(recB), `Bearer ${KEY_B}`);
        // the history went along: the first exchange is in B's request
        assert.ok(recB.body.messages.some((m) => m.role === 'user' && m.content === qa));

        const q2 = q('text', 'two stays on A');
        await v1Query(srv, two.sessionId, q2);
        assert.equal(fakeA.requestsMatching(q2).length, 1);

        // the run's own events and the session list / details name the model
        const events = (await get(srv, `/api/v1/sessions/events?sessionId=${one.sessionId}`)).json.events;
        const starts = events.filter((e) => e.type === 'agent_run_start');
        assert.deepEqual(starts.map((e) => e.model), ['fake-model', 'model-b']);
        const details = await get(srv, `/api/v1/sessions/details?sessionId=${one.sessionId}`);
        assert.equal(details.json.session.metadata.modelConfig.id, 'model-b');
        const list = await get(srv, '/api/v1/sessions');
        const mine = list.json.sessions.find((s) => s.id === one.sessionId);
        assert.equal(mine.metadata.modelConfig.id, 'model-b');
        noSecrets(list.text, 'GET /api/v1/sessions');
        noSecrets(JSON.stringify(events), 'stored events');
    });

    test('a run in progress keeps its model; the next run uses the new one', async () => {
        const { sessionId } = (await post(srv, '/api/v1/sessions/create', {})).json;
        const qt = q('tool delay=40 path=keep.txt', 'three calls on A');
        const running = post(srv, '/api/v1/sessions/query', { sessionId, query: qt });
        await fakeA.waitForRequest((r) => r.query === qt);
        const sw = await post(srv, '/api/v1/sessions/model', { sessionId, model: { provider: 'openai-compatible', id: 'model-b' } });
        assert.equal(sw.status, 200);
        const done = await running;
        assert.equal(done.status, 200, done.text);
        assert.equal(fakeA.requestsMatching(qt).length, 3, 'every call of the running query stayed on A');
        assert.equal(fakeB.requestsMatching(qt).length, 0);
        const qn = q('text', 'next run');
        await v1Query(srv, sessionId, qn);
        assert.equal(fakeB.requestsMatching(qn).length, 1);
        assert.equal(fakeA.requestsMatching(qn).length, 0);
    });

    test("a model's headers and params go with its requests; model.providers entries work", async () => {
        const { sessionId } = (await post(srv, '/api/v1/sessions/create', {})).json;
        await post(srv, '/api/v1/sessions/model', { sessionId, model: { provider: 'openai-compatible', id: 'model-h' } });
        const qh = q('text', 'with headers');
        await v1Query(srv, sessionId, qh);
        const rec = fakeB.requestsMatching(qh)[0];
        assert.equal(rec.headers['x-team'], 'blue');
        assert.equal(bearer(rec), `Bearer ${KEY_H}`);
        assert.equal(rec.body.top_p, 0.25);
        assert.equal(rec.body.seed, 7);
        assert.equal(rec.body.stream, true);

        await post(srv, '/api/v1/sessions/model', { sessionId, model: { provider: 'openai-compatible', id: 'model-p' } });
        const qp = q('text', 'provider list');
        await v1Query(srv, sessionId, qp);
        const recP = fakeB.requestsMatching(qp)[0];
        assert.equal(recP.body.model, 'model-p');
        assert.equal(bearer(recP), `Bearer ${KEY_P}`);
        assert.equal(recP.headers['x-team'], undefined);
    });

    test('an Anthropic model in the catalogue speaks the Messages API with its key', async () => {
        const { sessionId } = (await post(srv, '/api/v1/sessions/create', {})).json;
        const sw = await post(srv, '/api/v1/sessions/model', { sessionId, model: { provider: 'anthropic', id: 'claude-fake' } });
        assert.equal(sw.status, 200);
        const qc = q('text', 'to claude');
        const res = await v1Query(srv, sessionId, qc);
        assert.equal(res.result.content, claudeTextReply(qc));
        const rec = anth.requestsMatching(qc)[0];
        assert.equal(rec.headers['x-api-key'], ANTHROPIC_KEY);
        assert.equal(rec.body.model, 'claude-fake');
    });

    test('reasoning_content goes back to providers that take it, never to deepseek', async () => {
        const { sessionId } = (await post(srv, '/api/v1/sessions/create', {})).json;
        const qr = q('reasoning', 'think first');
        await v1Query(srv, sessionId, qr);
        const q2 = q('text', 'again on A');
        await v1Query(srv, sessionId, q2);
        const hist = (rec) => rec.body.messages.find((m) => m.role === 'assistant');
        assert.equal(hist(fakeA.requestsMatching(q2)[0]).reasoning_content, REASONING_TEXT);
        await post(srv, '/api/v1/sessions/model', { sessionId, model: { provider: 'deepseek', id: 'deepseek-fake' } });
        const q3 = q('text', 'now deepseek');
        await v1Query(srv, sessionId, q3);
        const rec = fakeB.requestsMatching(q3)[0];
        assert.equal(rec.body.model, 'deepseek-fake');
        assert.equal(hist(rec).content, REASONING_ANSWER);
        assert.equal(hist(rec).reasoning_content, undefined);
        assert.ok(!rec.rawBody.includes('reasoning_signature'));
    });

    test("the seed's routes and Socket.IO use the session's model", async () => {
        const { sessionId } = (await post(srv, '/api/v1/sessions/create', {})).json;
        await post(srv, '/api/v1/sessions/model', { sessionId, model: { provider: 'openai-compatible', id: 'model-b' } });
        const qs = q('text', 'seed route');
        const r = await post(srv, '/api/sessions/query', { sessionId, query: qs });
        assert.equal(r.status, 200, r.text);
        assert.equal(fakeB.requestsMatching(qs).length, 1);
        assert.equal(fakeA.requestsMatching(qs).length, 0);

        const s = await connectClient(srv, { transports: ['websocket'] });
        try {
            await emitAck(s, 'join-session', sessionId);
            const qio = q('text', 'socket.io');
            assert.deepEqual(await emitAck(s, 'send-query', { sessionId, query: qio }), { success: true });
            await until(() => runEnded(s), 10000, 'the end of the run');
            assert.equal(fakeB.requestsMatching(qio).length, 1);
            assert.equal(fakeA.requestsMatching(qio).length, 0);
        } finally {
            await closeAll([s]);
        }
    });

    test('the choice survives a restart', async () => {
        const { sessionId } = (await post(srv, '/api/v1/sessions/create', {})).json;
        await post(srv, '/api/v1/sessions/model', { sessionId, model: { provider: 'openai-compatible', id: 'model-b' } });
        await srv.stop();
        srv2 = await srv.restart({ env });
        const qr = q('text', 'after restart');
        const r = await post(srv2, '/api/v1/sessions/query', { sessionId, query: qr });
        assert.equal(r.status, 200, r.text);
        const rec = fakeB.requestsMatching(qr)[0];
        assert.ok(rec, 'the restarted server used model B');
        assert.equal(bearer(rec), `Bearer ${KEY_B}`);
        assert.equal(fakeA.requestsMatching(qr).length, 0);
        const details = await get(srv2, `/api/v1/sessions/details?sessionId=${sessionId}`);
        assert.equal(details.json.session.metadata.modelConfig.id, 'model-b');
        noSecrets(details.text, 'details after restart');
    });
});

// ---- providers with their own wire ----------------------------------------------------------

const NS_TEXT = 'The whole unstreamed answer, in one piece.';

addScenarios({
    // openai-non-streaming: a chat.completion JSON; step 0 calls list_directory.
    nonstream(s, a) {
        if (s.rec.body.stream !== false) {
            s.error(400, { error: { message: 'expected stream: false' } });
            return;
        }
        const message =
            a.step === 0
                ? {
                      role: 'assistant',
                      content: null,
                      tool_calls: [{ id: 'call_ns1', type: 'function', function: { name: 'list_directory', arguments: '{"path":"."}' } }],
                  }
                : { role: 'assistant', content: NS_TEXT };
        s.error(200, {
            id: 'chatcmpl-ns',
            object: 'chat.completion',
            created: Math.floor(Date.now() / 1000),
            model: s.rec.body.model,
            choices: [{ index: 0, message, finish_reason: a.step === 0 ? 'tool_calls' : 'stop' }],
            usage: { prompt_tokens: 5, completion_tokens: 7, total_tokens: 12 },
        });
    },
});

describe('azure-openai and openai-non-streaming', () => {
    let fake;
    let azure;
    let plain;
    before(async () => {
        fake = await startFakeOpenAI();
        azure = await startServer({
            args: ['--model.provider', 'azure-openai', '--model.id', 'dep-1', '--model.baseURL', `http://127.0.0.1:${fake.port}`, '--model.apiKey', 'AZURE_TEST_KEY', '--model.apiVersion', '2024-06-01'],
            env: { AZURE_TEST_KEY: 'az-fake-key-0b9e' },
        });
        plain = await startServer({ args: ['--model.provider', 'openai-non-streaming', '--model.id', 'ns-1', '--model.baseURL', fake.baseURL, '--model.apiKey', TEST_API_KEY] });
    });
    after(() => cleanup(azure, plain, fake));

    test("azure-openai: the deployment URL with api-version and the api-key header", async () => {
        const { sessionId } = (await post(azure, '/api/v1/sessions/create', {})).json;
        const qa = q('text', 'to azure');
        const res = await v1Query(azure, sessionId, qa);
        assert.equal(res.result.content, textReply(qa));
        const rec = fake.requestsMatching(qa)[0];
        assert.equal(rec.url, '/openai/deployments/dep-1/chat/completions?api-version=2024-06-01');
        assert.equal(rec.headers['api-key'], 'az-fake-key-0b9e');
        assert.equal(rec.headers.authorization, undefined);
        const models = await get(azure, '/api/v1/models');
        assert.deepEqual(models.json.models, [{ id: 'dep-1', provider: 'azure-openai' }]);
        assert.ok(!models.text.includes('az-fake-key'));
    });

    test('openai-non-streaming: one unstreamed request per call, the answer as one delta', async () => {
        const { sessionId } = (await post(plain, '/api/v1/sessions/create', {})).json;
        const qn = q('nonstream', 'no stream please');
        const r = await post(plain, '/api/v1/sessions/query/stream', { sessionId, query: qn });
        assert.equal(r.status, 200);
        const events = r.text
            .split('\n')
            .filter((l) => l.startsWith('data: '))
            .map((l) => JSON.parse(l.slice(6)));
        const recs = fake.requestsMatching(qn);
        assert.equal(recs.length, 2);
        for (const rec of recs) {
            assert.equal(rec.body.stream, false);
            assert.equal(rec.body.stream_options, undefined);
            assert.equal(rec.headers.accept, 'application/json');
        }
        const call = events.find((e) => e.type === 'tool_call');
        assert.equal(call.name, 'list_directory');
        assert.ok(events.some((e) => e.type === 'tool_result' && e.toolCallId === 'call_ns1'));
        const deltas = events.filter((e) => e.type === 'assistant_streaming_message');
        assert.deepEqual(deltas.map((e) => e.content), [NS_TEXT]);
        const final = events.filter((e) => e.type === 'assistant_message').pop();
        assert.equal(final.content, NS_TEXT);
        assert.equal(events.at(-1).type, 'agent_run_end');
        assert.equal(events.at(-1).status, 'idle');
    });
});

// ---- the model picker of the embedded UI, in chromium ----------------------------------------

describe('the web UI model picker (chromium)', { skip: SKIP_REASON }, () => {
    let fakeA;
    let fakeB;
    let srv;
    let browser;
    before(async () => {
        fakeA = await startFakeOpenAI();
        fakeB = await startFakeOpenAI();
        const file = path.join(tempDir('tars-models-ui-'), 'models.json');
        fs.writeFileSync(
            file,
            JSON.stringify({ server: { models: [{ provider: 'openai-compatible', id: 'model-b', displayName: 'Model B', baseURL: fakeB.baseURL, apiKey: KEY_B }] } }),
        );
        srv = await startServer({ fake: fakeA, args: ['--config', file] });
        browser = await launchBrowser();
    });
    after(async () => {
        if (browser) await browser.close();
        await cleanup(srv, fakeA, fakeB);
    });

    test('pick a model: the next answer comes from it, the choice shows after a reload, locked while running', { timeout: 60000 }, async () => {
        const page = await openPage(browser, `${srv.url}/`);
        await page.click(sel.newSession);
        await page.waitForFunction(() => location.hash.length > 1);
        const sid = await currentSessionId(page);
        await page.waitForSelector('#model-picker:not([disabled])');
        const labels = await page.$$eval('#model-picker option', (os) => os.map((o) => o.textContent));
        assert.deepEqual(labels, ['fake-model', 'Model B']);

        const qa = q('text', 'from the UI on A');
        await sendMessage(page, qa);
        await page.waitForFunction((t) => document.querySelector('#conversation').textContent.includes(t), textReply(qa));
        await waitStatus(page, 'Idle');
        assert.equal(fakeA.requestsMatching(qa).length, 1);

        const saved = page.waitForResponse((r) => r.url().endsWith('/api/v1/sessions/model') && r.status() === 200);
        await page.selectOption('#model-picker', { label: 'Model B' });
        await saved;
        const qb = q('slow n=12 delay=60', 'from the UI on B');
        await sendMessage(page, qb);
        await waitStatus(page, 'Running');
        assert.equal(await page.isDisabled('#model-picker'), true, 'locked while the run goes');
        await waitStatus(page, 'Idle', 20000);
        assert.equal(await page.isDisabled('#model-picker'), false);
        assert.equal(fakeB.requestsMatching(qb).length, 1);
        assert.equal(fakeA.requestsMatching(qb).length, 0);
        assert.equal(bearer(fakeB.requestsMatching(qb)[0]), `Bearer ${KEY_B}`);

        await page.reload();
        await page.waitForFunction((id) => document.querySelector(`#session-list li[data-session-id="${id}"] [aria-current="true"]`), sid);
        await page.waitForFunction(() => {
            const s = document.getElementById('model-picker');
            return s && s.selectedOptions[0] && s.selectedOptions[0].textContent === 'Model B';
        });
        const details = await get(srv, `/api/v1/sessions/details?sessionId=${sid}`);
        assert.equal(details.json.session.metadata.modelConfig.id, 'model-b');
        assertClean(assert, page);
        await page.context().close();
    });
});
