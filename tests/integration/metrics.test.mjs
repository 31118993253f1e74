// SPDX-License-Identifier: MIT
// GET /metrics (issue 14): the exposition passes `promtool check metrics`, a real Prometheus
// scrapes it, counters move after queries, tool calls, model errors and aborts, histogram
// buckets add up, and the route sits behind the access rules (or server.metrics.token).

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe } from 'node:test';
import { startFakeOpenAI } from './lib/fake-openai.mjs';
import { addToolScenarios, toolQuery } from './lib/tools-scenarios.mjs';
import { cleanup, createSession, get, post, q, startServer, streamQuery, tempDir, test, waitFor } from './lib/server.mjs';

const PROMTOOL = '/usr/bin/promtool';
const PROMETHEUS = '/usr/bin/prometheus';

/** Parses the text exposition into { samples: Map('name{labels}' -> number), types, helps }. */
export function parseExposition(text) {
    const samples = new Map();
    const types = new Map();
    for (const line of text.split('\n')) {
        if (line === '') continue;
        const t = /^# TYPE (\S+) (\S+)$/.exec(line);
        if (t) {
            types.set(t[1], t[2]);
            continue;
        }
        if (line.startsWith('#')) continue;
        const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{.*\})?) (\S+)$/.exec(line);
        assert.ok(m, `sample line: ${line}`);
        samples.set(m[1], Number(m[2]));
    }
    return { samples, types };
}

async function scrape(srv, headers = {}) {
    const r = await get(srv, '/metrics', { headers });
    assert.equal(r.status, 200, r.text);
    assert.match(r.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
    return parseExposition(r.text);
}

const val = (m, key) => m.samples.get(key) || 0;

/** Every histogram: cumulative buckets never decrease and le="+Inf" equals _count. */
function checkHistograms(m) {
    let seen = 0;
    for (const [name, type] of m.types) {
        if (type !== 'histogram') continue;
        const groups = new Map();
        for (const [key, v] of m.samples) {
            if (!key.startsWith(`${name}_bucket`)) continue;
            const labels = key.slice(`${name}_bucket`.length).replace(/,?le="[^"]*"/, '').replace('{}', '');
            const le = /le="([^"]*)"/.exec(key)[1];
            if (!groups.has(labels)) groups.set(labels, []);
            groups.get(labels).push([le === '+Inf' ? Infinity : Number(le), v]);
        }
        for (const [labels, buckets] of groups) {
            seen++;
            buckets.sort((a, b) => a[0] - b[0]);
            for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i][1] >= buckets[i - 1][1], `${name}${labels} buckets cumulative`);
            assert.equal(buckets.at(-1)[0], Infinity);
            const count = m.samples.get(`${name}_count${labels}`);
            assert.equal(buckets.at(-1)[1], count, `${name}${labels}: +Inf bucket == _count`);
            assert.ok(m.samples.has(`${name}_sum${labels}`));
        }
    }
    assert.ok(seen >= 5, 'histograms present');
}

async function freePort() {
    return new Promise((resolve) => {
        const s = net.createServer();
        s.listen(0, '127.0.0.1', () => {
            const { port } = s.address();
            s.close(() => resolve(port));
        });
    });
}

let fake;
let srv;

before(async () => {
    addToolScenarios();
    fake = await startFakeOpenAI();
    srv = await startServer({ fake, args: ['--llm.maxRetries', '1'] });
});
after(() => cleanup(srv, fake));

describe('metrics', () => {
    test('promtool check metrics passes on the exposition after some traffic', async () => {
        const sid = await createSession(srv);
        await streamQuery(srv, sid, q('text', 'hello'));
        await get(srv, '/api/v1/sessions/details?sessionId=nope');
        const r = await get(srv, '/metrics');
        assert.equal(r.status, 200);
        const res = spawnSync(PROMTOOL, ['check', 'metrics'], { input: r.text, encoding: 'utf8' });
        assert.equal(res.status, 0, `promtool: ${res.stdout}${res.stderr}`);
        const m = parseExposition(r.text);
        for (const name of [
            'tars_http_requests_total',
            'tars_http_request_duration_seconds',
            'tars_http_connections_open',
            'tars_http_sse_streams_open',
            'tars_socketio_clients',
            'tars_agent_sessions_loaded',
            'tars_agent_runs_running',
            'tars_agent_runs_queued',
            'tars_agent_run_duration_seconds',
            'tars_model_requests_total',
            'tars_model_time_to_first_token_seconds',
            'tars_event_loop_lag_seconds',
            'process_resident_memory_bytes',
            'process_open_fds',
            'tars_build_info',
        ])
            assert.ok(m.types.has(name), `${name} exposed`);
        assert.ok(val(m, 'process_resident_memory_bytes') > 1e6);
        assert.ok(val(m, 'process_open_fds') > 3);
        assert.equal(val(m, 'tars_http_errors_total{code="404",reason="Session not found"}'), 1);
        checkHistograms(m);
    });

    test('counters move after a query, a tool call, a model error and an abort', async () => {
        const m0 = await scrape(srv);
        const sid = await createSession(srv);
        // a plain answer
        await streamQuery(srv, sid, q('text', 'count me'));
        // one tool call, then the answer
        await streamQuery(srv, sid, toolQuery([['list_directory', { path: '.' }]]));
        // a model error (500, retried once, then the run ends in error)
        await streamQuery(srv, sid, q('err500'), { timeoutMs: 15000 });
        // an abort during the stream
        let aborted = false;
        await streamQuery(srv, sid, q('slow delay=100 n=100'), {
            onEvent: async (ev) => {
                if (ev.type === 'assistant_streaming_message' && !aborted) {
                    aborted = true;
                    await post(srv, '/api/sessions/abort', { sessionId: sid });
                }
            },
        });
        assert.ok(aborted);
        const m1 = await scrape(srv);
        const d = (key) => val(m1, key) - val(m0, key);
        assert.equal(d('tars_agent_runs_started_total'), 4);
        assert.equal(d('tars_agent_runs_ended_total{status="idle"}'), 2);
        assert.equal(d('tars_agent_runs_ended_total{status="error"}'), 1);
        assert.equal(d('tars_agent_runs_ended_total{status="aborted"}'), 1);
        const model = (outcome) => `tars_model_requests_total{provider="openai-compatible",model="fake-model",outcome="${outcome}"}`;
        assert.equal(d(model('ok')), 3, 'text, tool call, answer after the tool');
        assert.equal(d(model('http_5xx')), 1);
        assert.equal(d(model('aborted')), 1);
        assert.ok(d('tars_model_retries_total') >= 1, 'the 500 was retried');
        assert.equal(d('tars_tool_calls_total{tool="list_directory",outcome="ok"}'), 1);
        assert.equal(d('tars_tool_call_duration_seconds_count'), 1);
        assert.ok(d('tars_model_tokens_total{direction="input"}') > 0);
        assert.ok(d('tars_model_tokens_total{direction="output"}') > 0);
        assert.equal(d('tars_agent_events_total{type="agent_run_end"}'), 4);
        assert.equal(d('tars_agent_run_duration_seconds_count'), 4);
        assert.ok(d('tars_model_time_to_first_token_seconds_count{provider="openai-compatible",model="fake-model"}') >= 3);
        assert.ok(d('tars_http_requests_total{route="/api/sessions/query/stream",method="POST",code="2xx"}') === 4);
        assert.equal(val(m1, 'tars_agent_runs_running'), 0);
        assert.equal(val(m1, 'tars_http_sse_streams_open'), 0, 'every stream closed');
        assert.ok(d('tars_store_commits_total{outcome="ok"}') > 0);
        assert.ok(d('tars_http_received_bytes_total') > 0 && d('tars_http_sent_bytes_total') > 0);
        checkHistograms(m1);
    });

    test('an SSE stream is counted while it is open', async () => {
        const sid = await createSession(srv);
        let during = null;
        await streamQuery(srv, sid, q('slow delay=50 n=10'), {
            onEvent: async (ev) => {
                if (ev.type === 'assistant_streaming_message' && during === null) during = await scrape(srv);
            },
        });
        assert.equal(val(during, 'tars_http_sse_streams_open'), 1);
        assert.equal(val(during, 'tars_agent_runs_running'), 1);
    });

    test('a real Prometheus scrapes it: up == 1 and a counter through the query API', { timeout: 90000 }, async () => {
        const dir = tempDir('tars-prom-');
        const port = await freePort();
        const cfg = path.join(dir, 'prometheus.yml');
        fs.writeFileSync(
            cfg,
            [
                'global:',
                '  scrape_interval: 1s',
                '  scrape_timeout: 1s',
                'scrape_configs:',
                '  - job_name: tars',
                '    metrics_path: /metrics',
                '    static_configs:',
                `      - targets: ['127.0.0.1:${srv.port}']`,
                '',
            ].join('\n'),
        );
        const prom = spawn(
            PROMETHEUS,
            [`--config.file=${cfg}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`],
            { stdio: ['ignore', 'ignore', 'pipe'] },
        );
        let log = '';
        prom.stderr.on('data', (c) => (log += c));
        const exited = new Promise((resolve) => prom.on('exit', resolve));
        try {
            const query = async (expr) => {
                const r = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(expr)}`).catch(() => null);
                if (!r || r.status !== 200) return null;
                const j = await r.json();
                return j.status === 'success' ? j.data.result : null;
            };
            await waitFor(async () => {
                const res = await query('up{job="tars"}');
                return res && res.length === 1 && res[0].value[1] === '1';
            }, { timeoutMs: 60000, intervalMs: 500, what: `up == 1 (prometheus log: ${log.slice(-2000)})` });
            await waitFor(async () => {
                const res = await query('tars_http_requests_total{route="/metrics"}');
                return res && res.length > 0 && Number(res[0].value[1]) >= 1;
            }, { timeoutMs: 30000, intervalMs: 500, what: 'the /metrics request counter in Prometheus' });
        } finally {
            prom.kill('SIGTERM');
            await exited;
        }
    });
});

describe('metrics access', () => {
    const API_TOKEN = 'api-token-0123456789abcdef';
    const METRICS_TOKEN = 'scrape-token-0123456789abcd';
    let guarded;
    let scrapeOnly;
    before(async () => {
        guarded = await startServer({ fake, args: ['--server.auth.token', API_TOKEN, '--server.metrics.token', METRICS_TOKEN] });
        scrapeOnly = await startServer({ fake, args: ['--server.metrics.token', METRICS_TOKEN] });
    });
    after(() => cleanup(guarded, scrapeOnly));

    test('refused cross-origin', async () => {
        const r = await get(srv, '/metrics', { headers: { origin: 'http://evil.example' } });
        assert.equal(r.status, 403);
        assert.equal(r.json.error, 'Origin not allowed');
    });

    test('unauthenticated refused when a token is required; the API token or the metrics token opens it', async () => {
        assert.equal((await get(guarded, '/metrics')).status, 401);
        assert.equal((await get(guarded, '/metrics', { headers: { authorization: 'Bearer wrong-token-0123456789' } })).status, 401);
        assert.equal((await get(guarded, '/metrics', { headers: { authorization: `Bearer ${API_TOKEN}` } })).status, 200);
        assert.equal((await get(guarded, '/metrics', { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).status, 200);
        // the metrics token opens nothing else
        assert.equal((await get(guarded, '/api/v1/sessions', { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).status, 401);
        assert.ok(!guarded.stderr.includes(METRICS_TOKEN), 'the metrics token never reaches the log');
    });

    test('with only a metrics token, /metrics needs it and the API stays as it was', async () => {
        assert.equal((await get(scrapeOnly, '/metrics')).status, 401);
        assert.equal((await get(scrapeOnly, '/metrics', { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).status, 200);
        assert.equal((await get(scrapeOnly, '/api/v1/sessions')).status, 200);
    });
});
