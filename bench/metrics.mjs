// SPDX-License-Identifier: MIT
// Scrape cost of GET /metrics with many sessions loaded (issue 14): starts the server with the
// memory store, creates BENCH_SESSIONS sessions (10,000), runs a few queries against a fake
// model so every family has samples, then times BENCH_SCRAPES scrapes one after the other and
// prints the size of a scrape and the time per scrape (client-measured, loopback). Prints
// numbers only; asserts nothing about timings.
//
// Usage: TARS_BIN=/abs/path/agent-tars-server node bench/metrics.mjs   (or `make bench-metrics`)

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const BIN = process.env.TARS_BIN || path.resolve(HERE, '../build/agent-tars-server');
const SESSIONS = Number(process.env.BENCH_SESSIONS) || 10000;
const SCRAPES = Number(process.env.BENCH_SCRAPES) || 200;
const agent = new http.Agent({ keepAlive: true, maxSockets: 50 });
const children = [];
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tars-bench-metrics-'));

function done(code) {
    for (const c of children) c.kill('SIGKILL');
    fs.rmSync(tmp, { recursive: true, force: true });
    process.exit(code);
}
process.on('SIGINT', () => done(130));
setTimeout(() => {
    console.error('time limit (170 s) reached');
    done(1);
}, 170000).unref();

function start(cmd, args, re) {
    return new Promise((resolve, reject) => {
        const p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] }); // the fake exits when stdin closes
        children.push(p);
        let out = '';
        p.stdout.on('data', (d) => {
            out += d;
            const m = re.exec(out);
            if (m) resolve(Number(m[1]));
        });
        p.stderr.on('data', () => {});
        p.on('exit', (c) => reject(new Error(`${cmd} exited (${c}) before it was ready`)));
    });
}

function req(port, method, p, body) {
    return new Promise((resolve, reject) => {
        const data = body === undefined ? null : JSON.stringify(body);
        const r = http.request({ host: '127.0.0.1', port, method, path: p, agent, headers: data ? { 'content-type': 'application/json' } : {} }, (res) => {
            const chunks = [];
            res.on('data', (c) => chunks.push(c));
            res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks) }));
        });
        r.on('error', reject);
        r.end(data);
    });
}

async function main() {
    const fakePort = await start(process.execPath, [path.join(HERE, 'fake-model.mjs')], /listening on http:\/\/127\.0\.0\.1:(\d+)/);
    const port = await start(
        BIN,
        ['--port', '0', '--host', '127.0.0.1', '--workspace', tmp, '--logLevel', 'warn', '--server.storage.type', 'memory',
            '--server.maxLoadedSessions', String(SESSIONS * 2), '--model.provider', 'openai-compatible', '--model.id', 'bench',
            '--model.baseURL', `http://127.0.0.1:${fakePort}/v1`, '--model.apiKey', 'bench-key'],
        /listening on http:\/\/127\.0\.0\.1:(\d+)/,
    );
    const t0 = performance.now();
    const ids = [];
    for (let i = 0; i < SESSIONS; i += 50) {
        const batch = await Promise.all(Array.from({ length: Math.min(50, SESSIONS - i) }, () => req(port, 'POST', '/api/sessions/create', {})));
        for (const r of batch) ids.push(JSON.parse(r.body).sessionId);
    }
    console.log(`created ${ids.length} sessions in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    for (const id of ids.slice(0, 20)) await req(port, 'POST', '/api/sessions/query', { sessionId: id, query: '[[bench:chunks=20]] hi' });
    const first = await req(port, 'GET', '/metrics');
    if (first.status !== 200) throw new Error(`/metrics answered ${first.status}`);
    const text = first.body.toString('utf8');
    const loaded = /^tars_agent_sessions_loaded (\d+)/m.exec(text);
    const lines = text.split('\n').filter((l) => l && !l.startsWith('#')).length;
    console.log(`scrape: ${first.body.length} bytes, ${lines} samples, tars_agent_sessions_loaded ${loaded ? loaded[1] : '?'}`);
    const times = [];
    for (let i = 0; i < SCRAPES; i++) {
        const s = performance.now();
        await req(port, 'GET', '/metrics');
        times.push(performance.now() - s);
    }
    times.sort((a, b) => a - b);
    const mean = times.reduce((a, b) => a + b, 0) / times.length;
    const pct = (p) => times[Math.min(times.length - 1, Math.floor(p * times.length))];
    console.log(`${SCRAPES} scrapes in a row: mean ${mean.toFixed(3)} ms, p50 ${pct(0.5).toFixed(3)} ms, p99 ${pct(0.99).toFixed(3)} ms, max ${times.at(-1).toFixed(3)} ms`);
    done(0);
}

main().catch((e) => {
    console.error(e);
    done(1);
});
