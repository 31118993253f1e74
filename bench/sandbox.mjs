// SPDX-License-Identifier: MIT
// The start-up cost of a command (issue 10): how long run_command `true` takes in the server with
// command.sandbox bwrap (bubblewrap; also with command.network false, which adds a network
// namespace) and with command.sandbox none (the command helper, a subreaper), as the server
// measures it (the elapsedMs of each tool_result: spawn, exec, exit, pipes drained, result
// built), over N commands per mode driven by the scripted fake model of the integration tests.
// For reference, the bare fork+exec from Node of `/bin/sh -c true`, and of it under the helper
// (agent-tars-command-helper, and the server binary run as the helper when that is missing).
// No assertions; it prints numbers. `make bench-sandbox`, or
//   TARS_BIN=/abs/build/agent-tars-server node bench/sandbox.mjs [N]

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startFakeOpenAI } from '../tests/integration/lib/fake-openai.mjs';
import { TARS_BIN, cleanup, startServer } from '../tests/integration/lib/server.mjs';
import { addToolScenarios, runTools } from '../tests/integration/lib/tools-scenarios.mjs';

const N = Number(process.argv[2] || process.env.BENCH_N || 60);
const BATCH = 10; /* commands per query (one model step each) */

addToolScenarios();

const hasBwrap = (process.env.PATH || '').split(':').some((d) => d && fs.existsSync(path.join(d, 'bwrap')));

function stats(ms) {
    const s = [...ms].sort((a, b) => a - b);
    const mean = s.reduce((a, b) => a + b, 0) / s.length;
    const pct = (p) => s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
    return { n: s.length, mean, p50: pct(50), p90: pct(90), max: s[s.length - 1] };
}

function line(label, st) {
    const f = (x) => x.toFixed(2).padStart(7);
    return `${label.padEnd(44)} n=${String(st.n).padStart(4)}  mean ${f(st.mean)} ms  p50 ${f(st.p50)}  p90 ${f(st.p90)}  max ${f(st.max)}`;
}

/**
 * elapsedMs of N `true` commands through each server of `modes` ([label, args]). The servers run
 * side by side and take turns, BATCH commands (one query) at a time, so that load from elsewhere
 * on the machine falls on every mode alike.
 */
async function throughServers(fake, modes) {
    const servers = [];
    try {
        for (const [label, args] of modes) {
            const srv = await startServer({ fake, args: [...args, '--logLevel', 'warn'] });
            servers.push({ label, srv, ms: [] });
            /* one warm-up query: page cache, bwrap's first start */
            await runTools(srv, fake, [['run_command', { command: 'true' }]]);
        }
        while (servers.some((s) => s.ms.length < N)) {
            for (const s of servers) {
                const k = Math.min(BATCH, N - s.ms.length);
                if (k <= 0) continue;
                const steps = Array.from({ length: k }, () => ['run_command', { command: 'true' }]);
                const run = await runTools(s.srv, fake, steps, { timeoutMs: 60000 });
                for (const r of run.results) {
                    if (r.error || (Array.isArray(r.content) && r.content.some((p) => p.name === 'ERROR'))) {
                        throw new Error(`${s.label}: command failed: ${JSON.stringify(r)}`);
                    }
                    s.ms.push(r.elapsedMs);
                }
            }
        }
        return Object.fromEntries(servers.map((s) => [s.label, stats(s.ms)]));
    } finally {
        await cleanup(...servers.map((s) => s.srv));
    }
}

/** Wall time of a synchronous spawn from Node, per call. */
function bare(file, argv) {
    const ms = [];
    for (let i = 0; i < N; i++) {
        const t0 = process.hrtime.bigint();
        const r = spawnSync(file, argv, { stdio: 'ignore' });
        ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
        if (r.status !== 0) throw new Error(`${file} ${argv.join(' ')}: exit ${r.status}`);
    }
    return stats(ms);
}

const fake = await startFakeOpenAI();
try {
    console.log(`command start-up, ${N} commands per mode (run_command "true"; tool_result.elapsedMs, ms resolution)`);
    console.log(`binary: ${TARS_BIN}`);
    const modes = [];
    if (hasBwrap) {
        modes.push(['sandbox bwrap (network on, the default)', ['--command.sandbox', 'bwrap']]);
        modes.push(['sandbox bwrap, command.network false', ['--command.sandbox', 'bwrap', '--command.network', 'false']]);
    } else {
        console.log('(bwrap is not installed: apt-get install bubblewrap; sandboxed modes skipped)');
    }
    modes.push(['sandbox none (command helper)', ['--command.sandbox', 'none']]);
    const results = await throughServers(fake, modes);
    for (const [label] of modes) console.log(line(`server: ${label}`, results[label]));
    const sh = bare('/bin/sh', ['-c', 'true']);
    console.log(line('bare spawnSync: /bin/sh -c true', sh));
    const standalone = path.join(path.dirname(TARS_BIN), 'agent-tars-command-helper');
    if (fs.existsSync(standalone)) {
        console.log(line('bare spawnSync: agent-tars-command-helper + sh', bare(standalone, ['--command-helper', '/bin/sh', '-c', 'true'])));
    }
    console.log(line('bare spawnSync: server binary as helper + sh', bare(TARS_BIN, ['--command-helper', '/bin/sh', '-c', 'true'])));
    const none = results['sandbox none (command helper)'].mean;
    if (hasBwrap) {
        const sb = results['sandbox bwrap (network on, the default)'].mean;
        console.log(`bubblewrap vs the unsandboxed helper: ${(sb - none).toFixed(2)} ms per command (means)`);
    }
} finally {
    await fake.close();
}
