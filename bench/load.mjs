// SPDX-License-Identifier: MIT
// Load benchmark for agent-tars-server: starts the server against a fast fake model (own process),
// then measures session memory, session creation rate and SSE throughput / latency at several
// concurrency levels. Prints numbers only; it never asserts on timings. See bench/README.md.
//
// Usage: TARS_BIN=/abs/path/agent-tars-server node bench/load.mjs
// Knobs (env): BENCH_DELTAS (content deltas per stream, 200), BENCH_LEVELS (comma list of stream
// concurrencies, "1,100,1000,1000"; a repeated level shows whether RSS plateaus), BENCH_CREATES
// (20000), BENCH_IDLE (1000), BENCH_SERVER_ARGS (extra server flags).

import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const BIN = process.env.TARS_BIN || path.resolve(HERE, '../build/agent-tars-server');
const DELTAS = intEnv('BENCH_DELTAS', 200);
const LEVELS = (process.env.BENCH_LEVELS || '1,100,1000,1000').split(',').map(Number).filter((n) => n > 0);
const CREATES = intEnv('BENCH_CREATES', 20000);
const CREATE_CONC = 50;
const IDLE = intEnv('BENCH_IDLE', 1000);
const EXTRA_ARGS = (process.env.BENCH_SERVER_ARGS || '').split(/\s+/).filter(Boolean);
// BENCH_STORAGE: "sqlite" (default: a fresh database file in the temp dir) or "memory".
const STORAGE = process.env.BENCH_STORAGE === 'memory' ? 'memory' : 'sqlite';
let storedSeen = 0; // frames of the stored event types (all but the content deltas) received
const TOTAL_BUDGET_MS = 170000;
const STREAM_TIMEOUT_MS = 60000;
const STDERR_CAP = 256 * 1024;

/** Streams per concurrency level: enough events that a 10 ms CPU tick is < 1 % of the total. */
function streamsFor(conc) {
    if (conc === 1) return 300;
    if (conc <= 100) return conc * 5;
    return conc;
}

function intEnv(name, dflt) {
    const v = Number(process.env[name]);
    return Number.isInteger(v) && v > 0 ? v : dflt;
}

// --- process bookkeeping ------------------------------------------------------------------------

const state = { server: null, fake: null, tmp: null, finished: false };

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

process.on('exit', killChildren);
for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, () => {
        console.error(`\nbench: got ${sig}, cleaning up`);
        killChildren();
        process.exit(130);
    });
}

/** Spawns cmd and resolves { proc, match } once a stdout line matches re (10 s timeout). */
function spawnUntil(cmd, args, re, opts) {
    const proc = spawn(cmd, args, opts);
    proc.stderrText = '';
    if (proc.stderr) {
        proc.stderr.setEncoding('utf8');
        proc.stderr.on('data', (d) => {
            if (proc.stderrText.length < STDERR_CAP) proc.stderrText += d;
        });
    }
    proc.exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
    return new Promise((resolve, reject) => {
        let out = '';
        const timer = setTimeout(() => reject(new Error(`${cmd}: no listening line within 10 s`)), 10000);
        proc.on('error', (e) => {
            clearTimeout(timer);
            reject(e);
        });
        proc.stdout.setEncoding('utf8');
        proc.stdout.on('data', (d) => {
            out += d;
            const m = re.exec(out);
            if (m) {
                clearTimeout(timer);
                resolve({ proc, match: m });
            }
        });
        proc.exited.then((e) => {
            clearTimeout(timer);
            reject(new Error(`${cmd} exited early ${JSON.stringify(e)}\nstderr:\n${proc.stderrText.slice(-4000)}`));
        });
    });
}

// --- /proc readers ------------------------------------------------------------------------------

let CLK_TCK = 100;
try {
    CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
} catch {
    /* keep 100 */
}

/** utime+stime of pid in seconds (resolution 1/CLK_TCK). */
function cpuSeconds(pid) {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // fields after ")" start at field 3 (state); utime is field 14, stime field 15
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

/** A field of /proc/pid/status in KB (VmRSS, VmHWM). */
function statusKB(pid, field) {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : NaN;
}

function openFilesLimit() {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'));
    return m ? (m[1] === 'unlimited' ? Infinity : Number(m[1])) : NaN;
}

/** Snapshot of server, fake and bench-client CPU, for per-phase deltas. */
function cpuSnap() {
    const c = process.cpuUsage();
    return {
        t: performance.now(),
        server: cpuSeconds(state.server.pid),
        fake: cpuSeconds(state.fake.pid),
        client: (c.user + c.system) / 1e6,
    };
}

function cpuDelta(a, b) {
    return { wall: (b.t - a.t) / 1000, server: b.server - a.server, fake: b.fake - a.fake, client: b.client - a.client };
}

// --- HTTP client ----------------------------------------------------------------------------------

let PORT = 0;
const errors = new Map();

function noteError(where, e) {
    const key = `${where}: ${e && (e.code || e.message) ? e.code || e.message : String(e)}`;
    errors.set(key, (errors.get(key) || 0) + 1);
}

/** POST a JSON body; resolves { status, text }. */
function postJson(agent, urlPath, body) {
    return new Promise((resolve, reject) => {
        const data = JSON.stringify(body);
        const req = http.request(
            {
                host: '127.0.0.1',
                port: PORT,
                method: 'POST',
                path: urlPath,
                agent,
                headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) },
            },
            (res) => {
                let text = '';
                res.setEncoding('utf8');
                res.on('data', (d) => {
                    text += d;
                });
                res.on('end', () => resolve({ status: res.statusCode, text }));
                res.on('error', reject);
            },
        );
        req.on('error', reject);
        req.end(data);
    });
}

async function createSession(agent) {
    const r = await postJson(agent, '/api/sessions/create', {});
    if (r.status !== 201) throw new Error(`create: HTTP ${r.status} ${r.text.slice(0, 200)}`);
    const id = JSON.parse(r.text).sessionId;
    if (typeof id !== 'string') throw new Error(`create: no sessionId in ${r.text.slice(0, 200)}`);
    return id;
}

/** Runs fn(i) for i in [0, n) with at most `conc` in flight. */
async function pool(n, conc, fn) {
    let next = 0;
    const worker = async () => {
        while (next < n) {
            const i = next++;
            await fn(i);
        }
    };
    await Promise.all(Array.from({ length: Math.min(conc, n) }, worker));
}

/** Creates n sessions with `conc` in flight; returns { ids, latencies (ms), failed }. */
async function createMany(n, conc) {
    const agent = new http.Agent({ keepAlive: true, maxSockets: conc, maxFreeSockets: conc });
    const ids = [];
    const lat = [];
    let failed = 0;
    await pool(n, conc, async () => {
        const t0 = performance.now();
        try {
            ids.push(await createSession(agent));
            lat.push(performance.now() - t0);
        } catch (e) {
            failed++;
            noteError('create', e);
        }
    });
    agent.destroy();
    return { ids, lat, failed };
}

/**
 * One streaming query. Counts SSE blocks incrementally without parsing the JSON: for each
 * `data:` block it reads only the "type" value (events start with id, type, timestamp).
 * Resolves a record { ok, status, frames, ids, deltas, lastType, systemErrors, ttfe, ttfd, total }.
 */
function streamOnce(agent, sessionId, query) {
    return new Promise((resolve) => {
        const data = JSON.stringify({ sessionId, query });
        const r = { ok: false, status: 0, bytes: 0, frames: 0, ids: 0, bad: 0, deltas: 0, lastType: '', systemErrors: 0, ttfe: NaN, ttfd: NaN, total: NaN, err: null };
        const t0 = performance.now();
        let settled = false;
        const finish = (err) => {
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            r.total = performance.now() - t0;
            if (err) {
                r.err = err;
                noteError('stream', err);
            }
            r.ok = !err && r.status === 200 && r.deltas === DELTAS && r.lastType === 'agent_run_end' && r.bad === 0;
            resolve(r);
        };
        const req = http.request(
            {
                host: '127.0.0.1',
                port: PORT,
                method: 'POST',
                path: '/api/sessions/query/stream',
                agent,
                headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) },
            },
            (res) => {
                r.status = res.statusCode;
                res.setEncoding('latin1');
                let tail = '';
                res.on('data', (chunk) => {
                    r.bytes += chunk.length;
                    const buf = tail + chunk;
                    let start = 0;
                    let end;
                    while ((end = buf.indexOf('\n\n', start)) >= 0) {
                        if (buf.startsWith('data: ', start)) {
                            if (r.frames++ === 0) r.ttfe = performance.now() - t0;
                            const k = buf.indexOf('"type":"', start);
                            let type = '';
                            if (k >= 0 && k < end) type = buf.slice(k + 8, buf.indexOf('"', k + 8));
                            if (type === 'assistant_streaming_message') {
                                if (r.deltas++ === 0) r.ttfd = performance.now() - t0;
                            } else if (type === 'system' && buf.lastIndexOf('"level":"error"', end) > start) {
                                r.systemErrors++;
                            }
                            r.lastType = type;
                        } else if (buf.startsWith('id: ', start)) {
                            r.ids++;
                        } else {
                            r.bad++;
                        }
                        start = end + 2;
                    }
                    tail = buf.slice(start);
                });
                res.on('end', () => {
                    if (tail.length) r.bad++;
                    finish(null);
                });
                res.on('error', (e) => finish(e));
                res.on('aborted', () => finish(new Error('response aborted')));
            },
        );
        const timer = setTimeout(() => {
            req.destroy(new Error(`stream timeout ${STREAM_TIMEOUT_MS} ms`));
        }, STREAM_TIMEOUT_MS);
        req.on('error', (e) => finish(e));
        req.end(data);
    });
}

// --- statistics -----------------------------------------------------------------------------------

function pct(values, p) {
    const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
    if (!v.length) return NaN;
    return v[Math.min(v.length - 1, Math.max(0, Math.ceil((p / 100) * v.length) - 1))];
}

const fmt = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '-');
const fmtInt = (x) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '-');

function table(headers, rows) {
    const w = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
    const line = (cells) => cells.map((c, i) => (i === 0 ? String(c).padEnd(w[i]) : String(c).padStart(w[i]))).join('  ');
    return [line(headers), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n');
}

/** Server CPU per op, flagged when the tick count is too small to trust. */
function perOp(cpuS, ops) {
    if (!ops) return '-';
    const ticks = Math.round(cpuS * CLK_TCK);
    const us = (cpuS * 1e6) / ops;
    return ticks < 20 ? `${fmt(us, 2)}~` : fmt(us, 2);
}

// --- phases ---------------------------------------------------------------------------------------

async function memoryPhase(results) {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    await createSession(agent); // warm-up: first request paths, allocator arenas
    agent.destroy();
    const rss0 = statusKB(state.server.pid, 'VmRSS');
    const r = await createMany(IDLE, CREATE_CONC);
    await new Promise((res) => setTimeout(res, 200));
    const rss1 = statusKB(state.server.pid, 'VmRSS');
    results.memory = { rss0, rss1, created: r.ids.length, failed: r.failed };
    console.log(`memory: RSS ${rss0} KB at start, ${rss1} KB after ${r.ids.length} idle sessions (${r.failed} failed)`);
}

async function createPhase(results) {
    const c0 = cpuSnap();
    const r = await createMany(CREATES, CREATE_CONC);
    const d = cpuDelta(c0, cpuSnap());
    results.create = { ...d, ok: r.ids.length, failed: r.failed, p50: pct(r.lat, 50), p99: pct(r.lat, 99) };
    console.log(`create: ${r.ids.length} sessions in ${fmt(d.wall, 2)} s, ${r.failed} failed`);
}

async function streamPhase(conc, results) {
    const n = streamsFor(conc);
    const made = await createMany(n, CREATE_CONC);
    const ids = made.ids;
    const agent = new http.Agent({ keepAlive: true, maxSockets: conc, maxFreeSockets: conc });
    const recs = [];
    const rssBefore = statusKB(state.server.pid, 'VmRSS');
    const lag = monitorEventLoopDelay({ resolution: 5 });
    lag.enable();
    const c0 = cpuSnap();
    const run = pool(ids.length, conc, async (i) => {
        recs.push(await streamOnce(agent, ids[i], `bench stream ${conc}/${i} [[bench:chunks=${DELTAS}]]`));
    });
    const issueMs = performance.now() - c0.t; // the first min(conc, n) requests are issued synchronously
    await run;
    const d = cpuDelta(c0, cpuSnap());
    lag.disable();
    agent.destroy();
    const events = recs.reduce((a, r) => a + r.frames, 0);
    storedSeen += recs.reduce((a, r) => a + (r.frames - r.deltas), 0);
    const row = {
        conc,
        streams: n,
        createFailed: made.failed,
        ok: recs.filter((r) => r.ok).length,
        events,
        deltas: recs.reduce((a, r) => a + r.deltas, 0),
        idMismatch: recs.filter((r) => r.ids !== r.frames).length,
        badBlocks: recs.reduce((a, r) => a + r.bad, 0),
        systemErrors: recs.reduce((a, r) => a + r.systemErrors, 0),
        statuses: countBy(recs.map((r) => r.status)),
        lastTypes: countBy(recs.filter((r) => !r.ok).map((r) => r.lastType || '(none)')),
        ttfe50: pct(recs.map((r) => r.ttfe), 50),
        ttfe99: pct(recs.map((r) => r.ttfe), 99),
        ttfd50: pct(recs.map((r) => r.ttfd), 50),
        ttfd99: pct(recs.map((r) => r.ttfd), 99),
        total50: pct(recs.map((r) => r.total), 50),
        total99: pct(recs.map((r) => r.total), 99),
        ...d,
        bytes: recs.reduce((a, r) => a + r.bytes, 0),
        rssBefore,
        issueMs,
        lagMax: lag.max / 1e6,
        rssAfter: statusKB(state.server.pid, 'VmRSS'),
    };
    results.streams.push(row);
    console.log(
        `stream c=${conc}: ${row.ok}/${n} complete, ${events} events in ${fmt(d.wall, 2)} s` +
            (row.ok < n ? ` (statuses ${JSON.stringify(row.statuses)}, last event of failed: ${JSON.stringify(row.lastTypes)})` : ''),
    );
}

function countBy(xs) {
    const m = {};
    for (const x of xs) m[x] = (m[x] || 0) + 1;
    return m;
}

// --- report ---------------------------------------------------------------------------------------

function report(results) {
    const out = [];
    out.push('');
    out.push(`agent-tars-server benchmark  (${os.cpus().length} CPUs, ${os.cpus()[0]?.model?.trim() || '?'}, node ${process.version}, CLK_TCK ${CLK_TCK})`);
    out.push(`binary: ${BIN}`);
    out.push(`each stream: ${DELTAS} content deltas from the fake -> ${DELTAS + 4} data frames expected`);
    out.push('');
    out.push('SSE streaming (events = data frames received; CPU % = CPU seconds / wall seconds)');
    out.push(
        table(
            ['conc', 'streams', 'complete', 'events', 'wall s', 'events/s', 'srv us/event', 'srv CPU%', 'client CPU%', 'fake CPU%', 'MB/s', 'RSS before KB', 'RSS after KB'],
            results.streams.map((s) => [
                s.conc,
                s.streams,
                s.ok,
                fmtInt(s.events),
                fmt(s.wall, 2),
                fmtInt(s.events / s.wall),
                perOp(s.server, s.events),
                fmt((100 * s.server) / s.wall, 0),
                fmt((100 * s.client) / s.wall, 0),
                fmt((100 * s.fake) / s.wall, 0),
                fmt(s.bytes / s.wall / 1e6, 1),
                s.rssBefore,
                s.rssAfter,
            ]),
        ),
    );
    out.push('');
    out.push('Latency per stream, ms (from sending the request): first data frame / first content delta / last byte');
    out.push(
        table(
            ['conc', 'first p50', 'first p99', 'delta p50', 'delta p99', 'done p50', 'done p99', 'client issue ms', 'client loop lag max ms'],
            results.streams.map((s) => [
                s.conc,
                fmt(s.ttfe50, 2),
                fmt(s.ttfe99, 2),
                fmt(s.ttfd50, 2),
                fmt(s.ttfd99, 2),
                fmt(s.total50, 1),
                fmt(s.total99, 1),
                fmt(s.issueMs, 1),
                fmt(s.lagMax, 1),
            ]),
        ),
    );
    const c = results.create;
    if (c) {
        out.push('');
        out.push(`Session creation (${CREATES} x POST /api/sessions/create, ${CREATE_CONC} in flight)`);
        out.push(
            table(
                ['created', 'failed', 'wall s', 'creates/s', 'p50 ms', 'p99 ms', 'srv us/create', 'srv CPU%'],
                [[c.ok, c.failed, fmt(c.wall, 2), fmtInt(c.ok / c.wall), fmt(c.p50, 2), fmt(c.p99, 2), perOp(c.server, c.ok), fmt((100 * c.server) / c.wall, 0)]],
            ),
        );
    }
    const m = results.memory;
    if (m) {
        out.push('');
        out.push('Server memory (VmRSS)');
        out.push(
            table(
                ['at start KB', `after ${m.created} idle KB`, 'KB/idle session', 'at end KB', 'peak (VmHWM) KB'],
                [[m.rss0, m.rss1, fmt((m.rss1 - m.rss0) / (m.created || 1), 2), results.rssEnd ?? '-', results.hwm ?? '-']],
            ),
        );
    }
    out.push('');
    out.push('"~" = fewer than 20 CPU ticks measured: the per-op figure is coarse.');
    if (results.fakeStats) out.push(`fake model: ${JSON.stringify(results.fakeStats)}`);
    if (errors.size) {
        out.push('client errors:');
        for (const [k, v] of errors) out.push(`  ${v} x ${k}`);
    }
    const odd = results.streams.filter((s) => s.ok < s.streams || s.idMismatch || s.badBlocks || s.systemErrors || s.createFailed);
    for (const s of odd) {
        out.push(
            `c=${s.conc}: ${s.streams - s.ok} incomplete, ${s.idMismatch} with id/data count mismatch, ${s.badBlocks} bad SSE blocks, ` +
                `${s.systemErrors} system error events, ${s.createFailed} failed creates; HTTP statuses ${JSON.stringify(s.statuses)}`,
        );
    }
    console.log(out.join('\n'));
}

// --- main -----------------------------------------------------------------------------------------

/* Size of the bench database (main file + WAL), 0 in memory mode. */
function dbBytes() {
    let bytes = 0;
    for (const f of ['bench.db', 'bench.db-wal']) {
        try {
            bytes += fs.statSync(path.join(state.tmp, f)).size;
        } catch {}
    }
    return bytes;
}

async function main() {
    const results = { streams: [] };
    const nofile = openFilesLimit();
    if (nofile < 4096) {
        console.warn(`WARNING: ulimit -n is ${nofile} (< 4096); the 1000-stream phase needs ~2 fds per stream in the bench and ~2 in the server`);
    }
    if (!fs.existsSync(BIN)) throw new Error(`server binary not found: ${BIN} (set TARS_BIN)`);
    state.tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tars-bench-'));

    const fake = await spawnUntil(process.execPath, [path.join(HERE, 'fake-model.mjs')], /fake-model listening on http:\/\/127\.0\.0\.1:(\d+)\n/, {
        stdio: ['pipe', 'pipe', 'inherit'],
    });
    state.fake = fake.proc;
    const fakePort = Number(fake.match[1]);

    const env = { ...process.env };
    delete env.OPENAI_API_KEY;
    delete env.OPENAI_BASE_URL;
    const args = [
        '--port', '0',
        '--host', '127.0.0.1',
        '--workspace', state.tmp,
        '--logLevel', 'warn',
        '--model.provider', 'openai-compatible',
        '--model.id', 'bench',
        '--model.baseURL', `http://127.0.0.1:${fakePort}/v1`,
        '--model.apiKey', 'bench-key',
        '--server.maxConnections', '20000',
        ...(STORAGE === 'memory'
            ? ['--server.storage.type', 'memory']
            : ['--server.storage.path', path.join(state.tmp, 'bench.db')]),
        ...EXTRA_ARGS,
    ];
    const srv = await spawnUntil(BIN, args, /agent-tars-server listening on http:\/\/[^\s]+:(\d+)\n/, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    state.server = srv.proc;
    PORT = Number(srv.match[1]);
    console.log(`server pid ${srv.proc.pid} on port ${PORT}, fake model pid ${fake.proc.pid} on port ${fakePort}, ulimit -n ${nofile}`);

    // A crash ends the run at once, with the server's stderr.
    const crashed = srv.proc.exited.then((e) => {
        if (!state.finished) {
            const err = new Error(`server died during the run: ${JSON.stringify(e)}`);
            err.stderr = srv.proc.stderrText;
            throw err;
        }
    });
    const watchdog = new Promise((_, reject) => {
        const t = setTimeout(() => reject(new Error(`benchmark exceeded ${TOTAL_BUDGET_MS / 1000} s`)), TOTAL_BUDGET_MS);
        t.unref();
    });
    const phases = (async () => {
        await memoryPhase(results);
        await createPhase(results);
        results.dbBefore = dbBytes();
        const storedBefore = storedSeen;
        for (const conc of LEVELS) await streamPhase(conc, results);
        results.dbAfter = dbBytes();
        results.storedStreams = storedSeen - storedBefore;
        results.rssEnd = statusKB(srv.proc.pid, 'VmRSS');
        results.hwm = statusKB(srv.proc.pid, 'VmHWM');
        try {
            const r = await fetch(`http://127.0.0.1:${fakePort}/stats`);
            results.fakeStats = await r.json();
        } catch (e) {
            noteError('fake stats', e);
        }
    })();
    phases.catch(() => {});
    crashed.catch(() => {});
    await Promise.race([phases, crashed, watchdog]);
    state.finished = true;

    srv.proc.kill('SIGTERM');
    const t = setTimeout(() => srv.proc.kill('SIGKILL'), 10000);
    const exit = await srv.proc.exited;
    clearTimeout(t);
    report(results);
    console.log(`\nStorage: ${STORAGE}`);
    if (STORAGE === 'sqlite') {
        const grown = results.dbAfter - results.dbBefore;
        const perK = results.storedStreams ? grown / 1024 / (results.storedStreams / 1000) : 0;
        console.log(`database grew ${grown.toLocaleString()} bytes (file + WAL) over the stream phases, which stored ` +
            `${results.storedStreams.toLocaleString()} events: ${perK.toFixed(1)} KB per 1000 events; ${dbBytes().toLocaleString()} bytes at the end`);
    }
    console.log(`server exit on SIGTERM: ${JSON.stringify(exit)}`);
    const errLines = srv.proc.stderrText.split('\n').filter(Boolean);
    if (errLines.length) {
        console.log(`server stderr (${errLines.length} lines, first 20):`);
        for (const l of errLines.slice(0, 20)) console.log(`  ${l}`);
    }
    fake.proc.kill('SIGTERM');
}

main()
    .then(() => {
        killChildren();
        process.exit(0);
    })
    .catch((e) => {
        state.finished = true;
        console.error(`bench failed: ${e && e.stack ? e.stack : e}`);
        if (e && e.stderr) console.error(`server stderr (tail):\n${e.stderr.slice(-6000)}`);
        else if (state.server && state.server.stderrText) console.error(`server stderr (tail):\n${state.server.stderrText.slice(-6000)}`);
        killChildren();
        process.exit(1);
    });
