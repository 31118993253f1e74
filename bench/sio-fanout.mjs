// SPDX-License-Identifier: MIT
// Socket.IO fan-out benchmark: N WebSocket clients (official socket.io-client) join one session
// while a 500-token streaming query runs; prints events received per second, token lag (p50/p99
// from the model writing a token to a client receiving it), server CPU per delivered message and
// server RSS per connected client, for N in BENCH_SIO_LEVELS (default 100,1000). Numbers only: it
// asserts nothing about timings. See docs/internals/SIO.md ("Benchmark").
//
// Usage: TARS_BIN=/abs/path/agent-tars-server node bench/sio-fanout.mjs
// Knobs (env): BENCH_SIO_LEVELS ("100,1000"), BENCH_SIO_TOKENS (500), BENCH_SIO_TOKEN_MS (delay
// between tokens at the model, 2; 0 = the whole answer in one write), BENCH_SIO_WORKERS (client
// threads, default: the number of CPUs), BENCH_SERVER_ARGS.
// Internal: `node bench/sio-fanout.mjs --fake` runs the paced fake model in its own process.

import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const BIN = process.env.TARS_BIN || path.resolve(HERE, '../build/agent-tars-server');
const LEVELS = (process.env.BENCH_SIO_LEVELS || '100,1000').split(',').map(Number).filter((n) => n > 0);
const TOKENS = intEnv('BENCH_SIO_TOKENS', 500);
const TOKEN_MS = Number.isFinite(Number(process.env.BENCH_SIO_TOKEN_MS)) ? Number(process.env.BENCH_SIO_TOKEN_MS) : 2;
const WORKERS = intEnv('BENCH_SIO_WORKERS', os.cpus().length);
const EXTRA_ARGS = (process.env.BENCH_SERVER_ARGS || '').split(/\s+/).filter(Boolean);
const BUDGET_MS = 170000;
const MARK_RE = /\[\[sio-bench:tokens=(\d+) ms=(\d+(?:\.\d+)?)\]\]/;

function intEnv(name, dflt) {
    const v = Number(process.env[name]);
    return Number.isInteger(v) && v > 0 ? v : dflt;
}

/** Wall clock in ms with sub-ms precision, comparable across processes on this machine. */
const nowMs = () => performance.timeOrigin + performance.now();

// --- the paced fake model (child process) -------------------------------------------------------

function chunk(id, delta, finish) {
    return `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created: 0, model: 'bench', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
}

/** Streams `tokens` content deltas `ms` apart; each token carries the time it was written. */
function runFake() {
    const srv = http.createServer((req, res) => {
        let body = '';
        req.on('data', (d) => (body += d));
        req.on('end', () => {
            const m = MARK_RE.exec(body);
            const tokens = m ? Number(m[1]) : 10;
            const ms = m ? Number(m[2]) : 0;
            res.writeHead(200, { 'content-type': 'text/event-stream' });
            res.write(chunk('b', { role: 'assistant', content: '' }, null));
            let i = 0;
            const next = () => {
                if (ms === 0) {
                    let all = '';
                    for (; i < tokens; i++) all += chunk('b', { content: ` t${i}@${nowMs().toFixed(3)}` }, null);
                    res.write(all);
                } else if (i < tokens) {
                    res.write(chunk('b', { content: ` t${i}@${nowMs().toFixed(3)}` }, null));
                    i++;
                    setTimeout(next, ms);
                    return;
                }
                res.write(chunk('b', {}, 'stop'));
                res.end('data: [DONE]\n\n');
            };
            next();
        });
    });
    srv.listen(0, '127.0.0.1', () => console.log(`sio-fake listening on http://127.0.0.1:${srv.address().port}`));
}

// --- process bookkeeping ------------------------------------------------------------------------

const state = { server: null, fake: null, tmp: null };

function killChildren() {
    for (const c of [state.server, state.fake]) {
        if (c && c.exitCode === null && c.signalCode === null) {
            try {
                c.kill('SIGKILL');
            } catch {
                /* gone */
            }
        }
    }
    if (state.tmp) {
        fs.rmSync(state.tmp, { recursive: true, force: true });
        state.tmp = null;
    }
}

function spawnUntil(cmd, args, re) {
    const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stderrText = '';
    proc.stderr.setEncoding('utf8');
    proc.stderr.on('data', (d) => {
        if (proc.stderrText.length < 256 * 1024) proc.stderrText += d;
    });
    proc.exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
    return new Promise((resolve, reject) => {
        let out = '';
        const t = setTimeout(() => reject(new Error(`${cmd}: no listening line within 10 s`)), 10000);
        proc.stdout.setEncoding('utf8');
        proc.stdout.on('data', (d) => {
            out += d;
            const m = re.exec(out);
            if (m) {
                clearTimeout(t);
                resolve({ proc, match: m });
            }
        });
        proc.exited.then((e) => {
            clearTimeout(t);
            reject(new Error(`${cmd} exited early ${JSON.stringify(e)}\n${proc.stderrText.slice(-4000)}`));
        });
    });
}

let CLK_TCK = 100;
try {
    CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
} catch {
    /* keep 100 */
}

function cpuSeconds(pid) {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

function rssKB(pid) {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : NaN;
}

function pct(sorted, p) {
    if (!sorted.length) return NaN;
    return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function postJson(url, body) {
    const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: r.status, json: await r.json().catch(() => null) };
}

// --- one level: clients live in worker threads, so that the client side is not one event loop ----

async function connectAll(io, url, n) {
    const clients = [];
    for (let i = 0; i < n; i += 50) {
        const batch = [];
        for (let k = i; k < Math.min(n, i + 50); k++) {
            const s = io(url, { transports: ['websocket'], forceNew: true, reconnection: false, timeout: 20000 });
            batch.push(
                new Promise((resolve, reject) => {
                    s.once('connect', () => resolve(s));
                    s.once('connect_error', reject);
                }),
            );
        }
        clients.push(...(await Promise.all(batch)));
    }
    return clients;
}

/** Worker: connects `count` clients, joins them, then reports what they receive in a run. */
async function runWorker({ url, sessionId, count }) {
    const { io } = await import('socket.io-client');
    const clients = await connectAll(io, url, count);
    await Promise.all(clients.map((c) => c.timeout(20000).emitWithAck('join-session', sessionId)));
    const lags = [];
    let delivered = 0;
    let firstAt = Infinity;
    let lastAt = 0;
    let ended = 0;
    const loop = monitorEventLoopDelay({ resolution: 10 });
    for (const c of clients) {
        c.on('agent-event', (e) => {
            const t = nowMs();
            delivered++;
            if (t < firstAt) firstAt = t;
            lastAt = t;
            if (e.type === 'streaming_message') {
                const at = e.data.content.lastIndexOf('@');
                if (at >= 0) lags.push(t - Number(e.data.content.slice(at + 1)));
            } else if (e.type === 'agent-status' && e.data.isProcessing === false && e.seq !== undefined) {
                if (++ended === clients.length) {
                    loop.disable();
                    const l = Float64Array.from(lags);
                    parentPort.postMessage({ kind: 'done', delivered, firstAt, lastAt, lags: l, loopMaxMs: loop.max / 1e6 }, [l.buffer]);
                }
            }
        });
    }
    parentPort.on('message', (m) => {
        if (m === 'go') loop.enable();
        if (m === 'close') {
            for (const c of clients) c.disconnect();
            setTimeout(() => process.exit(0), 200);
        }
    });
    parentPort.postMessage({ kind: 'ready' });
}

function startWorker(url, sessionId, count) {
    const w = new Worker(fileURLToPath(import.meta.url), { workerData: { url, sessionId, count } });
    w.ready = new Promise((resolve, reject) => {
        w.on('error', reject);
        w.on('message', (m) => {
            if (m.kind === 'ready') resolve();
            if (m.kind === 'done') w.resolveDone(m);
        });
    });
    w.done = new Promise((r) => (w.resolveDone = r));
    return w;
}

async function runLevel(io, url, n) {
    const sessionId = (await postJson(`${url}/api/sessions/create`, {})).json.sessionId;
    const rss0 = rssKB(state.server.pid);
    const nw = Math.max(1, Math.min(WORKERS, n));
    const workers = [];
    for (let i = 0; i < nw; i++) workers.push(startWorker(url, sessionId, Math.floor(n / nw) + (i < n % nw ? 1 : 0)));
    await Promise.all(workers.map((w) => w.ready));
    await new Promise((r) => setTimeout(r, 200)); // let the server settle before reading RSS
    const rss1 = rssKB(state.server.pid);
    // the query comes from a client of our own that has not joined
    const [starter] = await connectAll(io, url, 1);
    for (const w of workers) w.postMessage('go');
    const cpu0 = cpuSeconds(state.server.pid);
    const client0 = process.cpuUsage();
    const t0 = nowMs();
    const ack = await starter.timeout(10000).emitWithAck('send-query', { sessionId, query: `[[sio-bench:tokens=${TOKENS} ms=${TOKEN_MS}]] go` });
    if (!ack || !ack.success) throw new Error(`send-query refused: ${JSON.stringify(ack)}`);
    const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error(`level ${n}: not every client saw the end within 60 s`)), 60000));
    const reports = await Promise.race([Promise.all(workers.map((w) => w.done)), timeout]);
    const wall = (nowMs() - t0) / 1000;
    const cpu1 = cpuSeconds(state.server.pid);
    const cu = process.cpuUsage(client0);
    starter.disconnect();
    for (const w of workers) w.postMessage('close');
    await Promise.all(workers.map((w) => new Promise((r) => w.once('exit', r))));
    await new Promise((r) => setTimeout(r, 300));
    const lags = new Float64Array(reports.reduce((a, r) => a + r.lags.length, 0));
    let off = 0;
    for (const r of reports) {
        lags.set(r.lags, off);
        off += r.lags.length;
    }
    lags.sort();
    const delivered = reports.reduce((a, r) => a + r.delivered, 0);
    const firstAt = Math.min(...reports.map((r) => r.firstAt));
    const lastAt = Math.max(...reports.map((r) => r.lastAt));
    const srvCpu = cpu1 - cpu0;
    return {
        n,
        workers: nw,
        delivered,
        expectedPerClient: TOKENS * 2 + 6,
        perClient: delivered / n,
        wall,
        deliverSpan: (lastAt - firstAt) / 1000,
        eventsPerSec: delivered / ((lastAt - firstAt) / 1000),
        lagP50: pct(lags, 50),
        lagP99: pct(lags, 99),
        lagMax: lags[lags.length - 1],
        srvCpuS: srvCpu,
        srvTicks: Math.round(srvCpu * CLK_TCK),
        srvUsPerMsg: (srvCpu * 1e6) / delivered,
        srvCpuPct: (srvCpu / wall) * 100,
        clientCpuPct: ((cu.user + cu.system) / 1e6 / wall) * 100,
        clientLoopMaxMs: Math.max(...reports.map((r) => r.loopMaxMs)),
        rssPerClientKB: (rss1 - rss0) / n,
        rss0,
        rss1,
    };
}

// --- main -------------------------------------------------------------------------------------

function fmt(v, d = 1) {
    return Number.isFinite(v) ? v.toFixed(d) : '-';
}

async function main() {
    const deadline = setTimeout(() => {
        console.error(`bench: over the ${BUDGET_MS / 1000} s budget, giving up`);
        killChildren();
        process.exit(1);
    }, BUDGET_MS);
    deadline.unref();
    process.on('exit', killChildren);
    for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => (killChildren(), process.exit(130)));

    const { io } = await import('socket.io-client');
    const fake = await spawnUntil(process.execPath, [fileURLToPath(import.meta.url), '--fake'], /sio-fake listening on (http:\/\/\S+)/);
    state.fake = fake.proc;
    state.tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tars-sio-bench-'));
    const args = [
        '--port', '0', '--host', '127.0.0.1', '--workspace', state.tmp, '--logLevel', 'warn',
        '--server.storage.path', path.join(state.tmp, 'bench.db'),
        '--model.provider', 'openai-compatible', '--model.id', 'bench', '--model.baseURL', `${fake.match[1]}/v1`,
        '--model.apiKey', 'bench-key', '--server.maxConnections', '20000', ...EXTRA_ARGS,
    ];
    const srv = await spawnUntil(BIN, args, /listening on http:\/\/[^\s:]+:(\d+)/);
    state.server = srv.proc;
    const url = `http://127.0.0.1:${srv.match[1]}`;
    const results = [];
    for (const n of LEVELS) results.push(await runLevel(io, url, n));

    const out = [];
    out.push(`agent-tars-server Socket.IO fan-out  (${os.cpus().length} CPUs, node ${process.version}, ${TOKENS} tokens ${TOKEN_MS} ms apart at the model, clients in ${WORKERS} worker threads)`);
    out.push('');
    out.push('clients | msgs/client (expect) | delivered | span s | msgs/s   | lag p50 ms | lag p99 ms | lag max ms | srv us/msg | srv CPU% | client CPU% | client loop max ms | RSS/client KB');
    for (const r of results) {
        out.push(
            [
                String(r.n).padStart(7),
                `${fmt(r.perClient, 0)} (${r.expectedPerClient})`.padStart(21),
                String(r.delivered).padStart(9),
                fmt(r.deliverSpan, 2).padStart(6),
                fmt(r.eventsPerSec, 0).padStart(8),
                fmt(r.lagP50, 2).padStart(10),
                fmt(r.lagP99, 2).padStart(10),
                fmt(r.lagMax, 2).padStart(10),
                `${r.srvTicks < 20 ? '~' : ''}${fmt(r.srvUsPerMsg, 2)}`.padStart(10),
                fmt(r.srvCpuPct, 0).padStart(8),
                fmt(r.clientCpuPct, 0).padStart(11),
                fmt(r.clientLoopMaxMs, 1).padStart(18),
                fmt(r.rssPerClientKB, 1).padStart(13),
            ].join(' | '),
        );
    }
    out.push('');
    out.push(`server RSS before/after connecting: ${results.map((r) => `${r.n}: ${r.rss0}/${r.rss1} KB`).join(', ')}`);
    console.log(out.join('\n'));
    state.server.kill('SIGTERM');
    const ex = await Promise.race([srv.proc.exited, new Promise((r) => setTimeout(() => r(null), 10000))]);
    console.log(`server exit: ${JSON.stringify(ex)}`);
    const errLines = srv.proc.stderrText.split('\n').filter(Boolean).slice(0, 20);
    if (errLines.length) console.log(`server stderr (first ${errLines.length} lines):\n${errLines.join('\n')}`);
    killChildren();
    if (!ex || ex.code !== 0) process.exit(1);
}

if (!isMainThread) runWorker(workerData);
else if (process.argv[2] === '--fake') runFake();
else
    main().catch((e) => {
        console.error(`bench failed: ${e.stack || e}`);
        if (state.server) console.error(`server stderr:\n${state.server.stderrText.slice(-4000)}`);
        killChildren();
        process.exit(1);
    });
