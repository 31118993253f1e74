// SPDX-License-Identifier: MIT
// Commands in a sandbox (issue 10), through the real binary and a scripted model that calls
// run_command / run_script: the server's secrets (model key, credentials in its environment,
// its command line) are nowhere a command can print them; a command holds no socket of ours;
// the database and config files are unreadable (also when they lie inside a bound tree);
// writes land in the workspace or in a private /tmp, never elsewhere on the host; with
// --isolate-sessions a command cannot read another session's folder; command.network false
// leaves no way to 127.0.0.1; setsid'd and double-forked processes die with an abort and with
// the timeout. With command.sandbox none, the descriptors, the environment allow-list and the
// whole-tree kill hold all the same. Last: a sandboxed stdio MCP server, and start-up checks.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startFakeOpenAI } from './lib/fake-openai.mjs';
import { TARS_BIN, TEST_API_KEY, cleanup, createSession, post, startServer, tempDir, test, waitFor } from './lib/server.mjs';
import { addToolScenarios, killMarked, pidsWithMarker, runTools, uniqueMarker } from './lib/tools-scenarios.mjs';
import { addMcpScenario, mcpQuery, requestsOf, writeConfig } from './mcp-helpers.mjs';
import { streamQuery } from './lib/server.mjs';

addToolScenarios();
addMcpScenario();

const HERE = path.dirname(fileURLToPath(import.meta.url));
const FAKE_MCP = path.join(HERE, '..', 'fixtures', 'mcp', 'fake-server.mjs');

const BWRAP = (process.env.PATH || '').split(':').some((d) => d && fs.existsSync(path.join(d, 'bwrap')));
const needBwrap = BWRAP ? {} : { skip: 'bubblewrap is not installed (apt-get install bubblewrap)' };

/** Credentials in the server's environment, none of which a command may see. */
const SECRETS = {
    OPENAI_API_KEY: 'sk-env-openai-5f1e2d3c4b5a',
    SECRET_KEY: 'django-insecure-9q8w7e6r5t4y',
    DATABASE_URL: 'postgres://app:pw-3e4r5t6y@db.internal/app',
    STRIPE_KEY: 'sk_live_51HxYzStripeKey77',
    GITHUB_TOKEN: 'ghp_sandboxtoken0123456789',
};
const MODEL_KEY = 'sk-model-key-in-argv-8c7b6a';
const CFG_SECRET = 'cfg-secret-b4d2e8f1';

/** The STDOUT (and STDERR) text of a command's result. */
function outOf(res) {
    assert.equal(res.error, undefined, `the command ran: ${res.error}`);
    const parts = Array.isArray(res.content) ? res.content : [];
    const get = (n) => (parts.find((p) => p.name === n) || {}).text || '';
    return { stdout: get('STDOUT'), stderr: get('STDERR'), error: get('ERROR'), all: parts.map((p) => p.text).join('\n') };
}

async function runOne(srv, fake, command, opts = {}) {
    const run = await runTools(srv, fake, [['run_command', { command }]], opts);
    return outOf(run.results[0]);
}

function assertNoSecret(text, where) {
    for (const v of [...Object.values(SECRETS), MODEL_KEY, CFG_SECRET, TEST_API_KEY]) {
        assert.ok(!text.includes(v), `${where}: the secret ${v} leaked:\n${text.slice(0, 4000)}`);
    }
}

/**
 * Lists the descriptors a command starts with: the shell execs ls, which adds only its own
 * directory descriptor on /proc/<pid>/fd. (Not `ls /proc/$$/fd`: the shell holds pipe ends and
 * saved descriptors of its own while it runs a pipeline or a redirection.)
 */
const FDS = 'exec ls -l /proc/self/fd';

/** The descriptors in FDS's output other than ls's own directory, e.g. ['0', '1', '2']. */
function startFds(text) {
    return text
        .split('\n')
        .map((l) => /\s(\d+) -> (.*)$/.exec(l))
        .filter((m) => m && !/^\/proc\/\d+\/fd$/.test(m[2]))
        .map((m) => `${m[1]} -> ${m[2]}`);
}

function assertStdioOnly(text) {
    const fds = startFds(text);
    assert.deepEqual(fds.map((f) => f.split(' ')[0]), ['0', '1', '2'], text);
    assert.ok(!text.includes('socket:'), text);
}

/** Prints everything a command could read about the processes it sees and itself. */
const SNOOP = [
    'env',
    'for f in /proc/[0-9]*/environ /proc/[0-9]*/cmdline; do tr "\\0" "\\n" < "$f"; done 2>/dev/null',
    'for f in /proc/$PPID/*; do head -c 65536 "$f"; done 2>/dev/null | tr -c "[:print:]\\n" .',
    'cat /proc/$PPID/environ /proc/$PPID/cmdline 2>/dev/null | tr "\\0" "\\n"',
].join('; ');

/** Waits until `n` sleeps tagged `marker` run. */
async function waitSleeps(marker, n) {
    await waitFor(() => pidsWithMarker(marker).filter((p) => p.cmdline.startsWith('sleep ')).length >= n, {
        timeoutMs: 5000,
        what: `${n} sleeps tagged ${marker}`,
    });
}

async function assertNoneLeft(marker) {
    await waitFor(() => pidsWithMarker(marker).length === 0, {
        timeoutMs: 3000,
        what: `no process tagged ${marker} left (still: ${JSON.stringify(pidsWithMarker(marker))})`,
    });
}

/** setsid + double fork + a foreground sleep, aborted once all three run: nothing survives. */
async function abortLeavesNothing(srv, fake) {
    const dur = `310.${process.pid}${Date.now() % 100000}`;
    const command = `setsid sleep ${dur} & (setsid sleep ${dur} &); sleep ${dur}`;
    const sid = await createSession(srv);
    let aborted = null;
    try {
        const run = await runTools(srv, fake, [['run_command', { command }]], {
            sid,
            onEvent: async (ev) => {
                if (ev.type !== 'tool_call' || aborted) return;
                await waitSleeps(dur, 3);
                aborted = await post(srv, '/api/sessions/abort', { sessionId: sid });
            },
        });
        assert.ok(aborted, 'the command was running when we aborted');
        assert.equal(run.events.at(-1).status, 'aborted');
        await assertNoneLeft(dur);
    } finally {
        killMarked(dur);
    }
}

/** The same past the command timeout (the server runs with --command.timeoutMs 1500). */
async function timeoutLeavesNothing(srv, fake) {
    const dur = `311.${process.pid}${Date.now() % 100000}`;
    const command = `setsid sleep ${dur} & (setsid sleep ${dur} &); sleep ${dur}`;
    try {
        const run = await runTools(srv, fake, [['run_command', { command }]], {
            onEvent: async (ev) => {
                if (ev.type === 'tool_call') await waitSleeps(dur, 3);
            },
        });
        const res = outOf(run.results[0]);
        assert.match(res.error, /^Command timed out after 1500 ms: /);
        await assertNoneLeft(dur);
    } finally {
        killMarked(dur);
    }
}

// --------------------------------------------------------------------------------------------

describe('the default sandbox (bubblewrap)', needBwrap, () => {
    let fake;
    let srv;
    let cfg;

    before(async () => {
        fake = await startFakeOpenAI();
        cfg = writeConfig({ command: { timeoutMs: 1500 }, instructions: `be brief ${CFG_SECRET}` });
        srv = await startServer({ fake, apiKey: MODEL_KEY, env: SECRETS, args: ['--config', cfg] });
    });
    after(() => cleanup(srv, fake));

    test('secrets: not in env, /proc/*/environ, /proc/*/cmdline, /proc/$PPID/*', async () => {
        const r = await runOne(srv, fake, SNOOP);
        assertNoSecret(r.all, 'sandboxed command');
        assert.match(r.stdout, new RegExp(`^HOME=${srv.workspace}$`, 'm'), 'HOME is the workspace');
        assert.match(r.stdout, /^PATH=/m);
        // a PID namespace of its own: the server is not among the processes the command sees
        const pids = await runOne(srv, fake, 'ls /proc | grep -E "^[0-9]+$" | sort -n | tr "\\n" " "');
        const seen = pids.stdout.split(' ').filter(Boolean).map(Number);
        assert.ok(seen.length >= 2 && seen.length <= 6 && seen.every((p) => p < 50), `only the sandbox's own few processes: ${pids.stdout}`);
    });

    test('descriptors: 0, 1, 2 only; no socket (the model connection is open meanwhile)', async () => {
        const r = await runOne(srv, fake, FDS);
        assertStdioOnly(r.stdout);
    });

    test('the database, its directory and the config file are absent; /etc is read-only', async () => {
        const r = await runOne(srv, fake, `cat ${srv.dbPath} ${srv.dbPath}-wal ${cfg}; ls ${path.dirname(srv.dbPath)}; ls ${path.dirname(cfg)}; head -c 100 /etc/passwd >/dev/null && echo etc-readable; echo x > /etc/tars-${process.pid} || echo etc-readonly`);
        assert.ok(!r.all.includes('SQLite format 3'), r.all);
        assert.ok(!r.all.includes(CFG_SECRET), r.all);
        assert.match(r.stderr, /No such file or directory/);
        assert.match(r.stdout, /etc-readable/);
        assert.match(r.stdout, /etc-readonly/);
        assert.equal(fs.existsSync(`/etc/tars-${process.pid}`), false);
    });

    test('root-only files of /etc (shadow, private keys) are covered when the server runs as root', { skip: process.getuid() !== 0 && 'not root' }, async () => {
        const r = await runOne(srv, fake, 'cat /etc/shadow; ls /etc/ssl/private | wc -l; cat /etc/passwd | head -1');
        assert.ok(!/^root:[^:]*:\d+:/m.test(r.stdout.split('\n').filter((l) => !l.startsWith('root:x:')).join('\n')), r.all);
        assert.match(r.stderr, /cat: \/etc\/shadow: Permission denied/);
        assert.match(r.stdout, /^0$/m, 'an empty tmpfs over /etc/ssl/private');
        assert.match(r.stdout, /^root:x:0:0:/m, 'world-readable files stay readable');
    });

    test('writes: the workspace works; /tmp is private; anywhere else fails', async () => {
        const mark = uniqueMarker('w');
        const r = await runOne(
            srv,
            fake,
            `echo ws > ${mark}.txt && echo ws-ok; echo tmp > /tmp/${mark} && cat /tmp/${mark}; ` +
                `echo up > ../${mark} || echo up-denied; echo usr > /usr/${mark} || echo usr-denied; ` +
                `echo root > /${mark} || echo root-denied; mkdir -p ~/../../${mark} || echo mkdir-denied`,
        );
        assert.match(r.stdout, /ws-ok/);
        assert.match(r.stdout, /^tmp$/m, 'the private /tmp is writable');
        assert.equal(fs.readFileSync(path.join(srv.workspace, `${mark}.txt`), 'utf8'), 'ws\n');
        assert.equal(fs.existsSync(`/tmp/${mark}`), false, 'nothing lands in the host /tmp');
        assert.equal(fs.existsSync(path.join(path.dirname(srv.workspace), mark)), false);
        assert.equal(fs.existsSync(`/usr/${mark}`), false);
        assert.equal(fs.existsSync(`/${mark}`), false);
        for (const w of ['usr-denied', 'root-denied']) assert.match(r.stdout, new RegExp(w));
    });

    test('run_script runs in the same sandbox', async () => {
        const run = await runTools(srv, fake, [['run_script', { interpreter: 'sh', script: `${SNOOP}\ncat ${srv.dbPath} || echo no-db\n${FDS}\n` }]]);
        const r = outOf(run.results[0]);
        assertNoSecret(r.all, 'run_script');
        assert.match(r.stdout, /no-db/);
        assertStdioOnly(r.stdout.slice(r.stdout.indexOf('no-db')));
    });

    test('network on (the default): the fake model on 127.0.0.1 is reachable', async () => {
        const port = new URL(fake.baseURL).port;
        const run = await runTools(srv, fake, [['run_script', { interpreter: 'node', script: connectScript(port) }]]);
        assert.match(outOf(run.results[0]).stdout, /^connected$/m);
    });

    test('setsid and double forks: abort leaves no process', async () => {
        await abortLeavesNothing(srv, fake);
    });

    test('setsid and double forks: the timeout leaves no process', async () => {
        await timeoutLeavesNothing(srv, fake);
    });
});

function connectScript(port) {
    return (
        `const s = require('net').connect(${port}, '127.0.0.1');\n` +
        `s.on('connect', () => { console.log('connected'); s.destroy(); });\n` +
        `s.on('error', (e) => console.log('error ' + e.code));\n`
    );
}

describe('sandbox: the database and config inside a bound tree are covered', needBwrap, () => {
    let fake;
    let srv;

    before(async () => {
        fake = await startFakeOpenAI();
        const ws = tempDir('tars-ws-inside-');
        const cfg = path.join(ws, 'config.json');
        fs.writeFileSync(cfg, JSON.stringify({ instructions: CFG_SECRET }));
        srv = await startServer({ fake, workspace: ws, args: ['--config', cfg, '--server.storage.path', path.join(ws, 'agent-tars.db')] });
    });
    after(() => cleanup(srv, fake));

    test('a database and a config file in the workspace are covered (/dev/null, no device access); the rest works', async () => {
        const run = await runTools(srv, fake, [['run_command', { command: 'cat agent-tars.db agent-tars.db-wal config.json; echo hi > mine.txt && cat mine.txt; echo junk > agent-tars.db; echo junk > config.json; ls' }]]);
        const r = outOf({ ...run.results[0], error: undefined });
        assert.ok(!r.all.includes('SQLite format 3'), r.all);
        assert.ok(!r.all.includes(CFG_SECRET), r.all);
        assert.match(r.stderr, /cat: agent-tars.db: Permission denied/);
        assert.match(r.stderr, /cat: config.json: Permission denied/);
        assert.match(r.stdout, /^hi$/m);
        assert.match(r.stdout, /^config.json$/m, 'the names stay, the contents are gone');
        // the real files are intact
        assert.ok(fs.readFileSync(path.join(srv.workspace, 'config.json'), 'utf8').includes(CFG_SECRET));
        assert.equal(fs.readFileSync(path.join(srv.workspace, 'agent-tars.db')).subarray(0, 15).toString(), 'SQLite format 3');
    });
});

describe('sandbox: a workspace configured through a symlink', needBwrap, () => {
    let fake;
    let srv;
    let real;

    before(async () => {
        fake = await startFakeOpenAI();
        real = tempDir('tars-ws-real-');
        const link = path.join(tempDir('tars-ws-link-'), 'ws');
        fs.symlinkSync(real, link);
        srv = await startServer({ fake, workspace: link });
    });
    after(() => cleanup(srv, fake));

    test('commands run in it, under either path', async () => {
        const r = await runOne(srv, fake, 'pwd; echo "$HOME"; echo hi > f.txt; cat "$HOME/f.txt"');
        assert.equal(r.stdout, `${real}\n${srv.workspace}\nhi\n`);
        assert.equal(fs.readFileSync(path.join(real, 'f.txt'), 'utf8'), 'hi\n');
    });
});

describe('sandbox: --isolate-sessions', needBwrap, () => {
    let fake;
    let srv;

    before(async () => {
        fake = await startFakeOpenAI();
        srv = await startServer({ fake, args: ['--isolate-sessions'] });
    });
    after(() => cleanup(srv, fake));

    test("a command cannot read another session's files by any path", async () => {
        const secret = uniqueMarker('sessB');
        const a = await createSession(srv);
        const b = await createSession(srv);
        const wr = await runOne(srv, fake, `echo ${secret} > b.txt; pwd`, { sid: b });
        const bDir = wr.stdout.trim();
        assert.equal(bDir, path.join(srv.workspace, b));
        assert.equal(fs.readFileSync(path.join(bDir, 'b.txt'), 'utf8'), `${secret}\n`);
        const r = await runOne(
            srv,
            fake,
            `pwd; ls -a ..; cat ../${b}/b.txt ${bDir}/b.txt; ls ${srv.workspace}; ` +
                `grep -rs ${secret} ${srv.workspace} /tmp /proc/[0-9]*/cwd/ 2>/dev/null; echo done`,
            { sid: a },
        );
        assert.ok(!r.all.includes(secret), r.all);
        assert.match(r.stdout, new RegExp(`^${path.join(srv.workspace, a)}$`, 'm'));
        assert.match(r.stdout, /^done$/m);
    });
});

describe('sandbox: command.network false', needBwrap, () => {
    let fake;
    let srv;

    before(async () => {
        fake = await startFakeOpenAI();
        srv = await startServer({ fake, args: ['--command.network', 'false'] });
    });
    after(() => cleanup(srv, fake));

    test('a command cannot connect to 127.0.0.1 (the fake model is listening there)', async () => {
        const port = new URL(fake.baseURL).port;
        const run = await runTools(srv, fake, [['run_script', { interpreter: 'node', script: connectScript(port) }]]);
        const r = outOf(run.results[0]);
        assert.match(r.stdout, /^error E[A-Z]+$/m, r.all);
        assert.ok(!r.stdout.includes('connected'), r.all);
    });
});

// --------------------------------------------------------------------------------------------

describe('command.sandbox none: hygiene, allow-list and the whole-tree kill still hold', () => {
    let fake;
    let srv;

    before(async () => {
        fake = await startFakeOpenAI();
        srv = await startServer({
            fake,
            apiKey: MODEL_KEY,
            env: { ...SECRETS, TARS_PASSED: 'passed-42' },
            args: ['--command.sandbox', 'none', '--command.timeoutMs', '1500', '--command.passEnv', 'TARS_PASSED'],
        });
    });
    after(() => cleanup(srv, fake));

    test('the environment is the allow-list; no secret in /proc of the helper or of the server', async () => {
        // (not /proc/*: without a sandbox a command sees every process of the machine, other
        // test servers included)
        const me = srv.proc.pid;
        const r = await runOne(
            srv,
            fake,
            'env; echo ---; for f in /proc/$PPID/*; do head -c 65536 "$f"; done 2>/dev/null | tr -c "[:print:]\\n" .; ' +
                `echo; cat /proc/$PPID/environ /proc/$PPID/cmdline /proc/${me}/environ /proc/${me}/cmdline | tr "\\0" "\\n"`,
        );
        assertNoSecret(r.all, 'unsandboxed command');
        const env = r.stdout.slice(0, r.stdout.indexOf('\n---\n'));
        const names = env.split('\n').map((l) => l.slice(0, l.indexOf('=')));
        const allowed = /^(PATH|HOME|PWD|LANG|LC_[A-Z_]+|TERM|TZ|USER|SHELL|TMPDIR|TARS_PASSED)$/;
        for (const n of names) assert.match(n, allowed, `${n} is not on the allow-list`);
        assert.match(env, /^TARS_PASSED=passed-42$/m);
        assert.match(env, new RegExp(`^HOME=${srv.workspace}$`, 'm'));
        // the server's own command line shows its key as stars
        assert.match(r.stdout, /^\*{10,}$/m);
    });

    test('descriptors: 0, 1, 2 only; no socket', async () => {
        const r = await runOne(srv, fake, FDS);
        assertStdioOnly(r.stdout);
        const helper = await runOne(srv, fake, 'ls -l /proc/$PPID/fd; readlink /proc/$PPID/exe');
        assert.ok(!helper.stdout.includes('socket:'), `the helper holds no socket either: ${helper.stdout}`);
        // the libc-only helper next to the binary when it is there, else the binary itself
        const standalone = path.join(path.dirname(TARS_BIN), 'agent-tars-command-helper');
        const want = fs.existsSync(standalone) ? fs.realpathSync(standalone) : fs.realpathSync(TARS_BIN);
        assert.match(helper.stdout, new RegExp(`^${want}$`, 'm'));
    });

    test('setsid and double forks: abort leaves no process', async () => {
        await abortLeavesNothing(srv, fake);
    });

    test('setsid and double forks: the timeout leaves no process', async () => {
        await timeoutLeavesNothing(srv, fake);
    });

    test('shutdown mid-command leaves no process', async () => {
        const own = await startServer({ fake, args: ['--command.sandbox', 'none'] });
        const dur = `312.${process.pid}${Date.now() % 100000}`;
        try {
            const sid = await createSession(own);
            const streaming = runTools(own, fake, [['run_command', { command: `(setsid sleep ${dur} &); sleep ${dur}` }]], { sid }).catch((e) => e);
            await waitSleeps(dur, 2);
            await own.stop();
            await streaming;
            await assertNoneLeft(dur);
        } finally {
            killMarked(dur);
            await cleanup(own);
        }
    });
});

// --------------------------------------------------------------------------------------------

describe('sandboxed stdio MCP server (mcpServers.<name>.sandbox)', needBwrap, () => {
    let fake;
    let srv;

    before(async () => {
        fake = await startFakeOpenAI();
        const ws = tempDir('tars-ws-mcp-');
        fs.copyFileSync(FAKE_MCP, path.join(ws, 'fake-server.mjs')); // the server must be inside a bound tree
        const cfg = writeConfig({ mcpServers: { boxed: { command: 'node', args: [path.join(ws, 'fake-server.mjs')], sandbox: true } } });
        srv = await startServer({ fake, workspace: ws, env: SECRETS, args: ['--config', cfg] });
    });
    after(() => cleanup(srv, fake));

    test('it runs in a PID namespace of its own, without the secrets', async () => {
        const query = mcpQuery([['pid', {}], ['env', { name: 'SECRET_KEY' }]]);
        const sid = await createSession(srv);
        await streamQuery(srv, sid, query, { timeoutMs: 15000 });
        const reqs = requestsOf(fake, query);
        const tools = reqs.slice(1).map((r) => r.body.messages.filter((m) => m.role === 'tool').at(-1).content);
        assert.equal(tools.length, 2, JSON.stringify(tools));
        const [pid, env] = tools.map((t) => JSON.parse(t)[0].text);
        assert.ok(Number(pid) < 10, `a small pid inside its own PID namespace: ${pid}`);
        assert.equal(env, '(unset)', 'SECRET_KEY is not in its environment');
        assert.match(srv.stderr, /mcp server 'boxed' started: node \(pid \d+, sandboxed\)/);
    });
});

// --------------------------------------------------------------------------------------------

describe('start-up', () => {
    test('command.sandbox bwrap without bwrap on PATH: the start fails and says what to install', async () => {
        const { spawnSync } = await import('node:child_process');
        const ws = tempDir('tars-ws-nobwrap-');
        const r = spawnSync(TARS_BIN, ['--port', '0', '--workspace', ws, '--server.storage.type', 'memory', '--command.sandbox', 'bwrap'], {
            env: { PATH: '/nonexistent', HOME: ws },
            encoding: 'utf8',
            timeout: 10000,
        });
        assert.notEqual(r.status, 0);
        assert.match(r.stderr, /command\.sandbox is bwrap but bubblewrap \(bwrap\) is not installed; apt-get install bubblewrap/);
    });

    test('command.sandbox auto without bwrap: a warning at start, commands still run (unsandboxed)', async () => {
        const fake = await startFakeOpenAI();
        const srv = await startServer({ fake, env: { PATH: '/usr/local/nowhere' } });
        try {
            assert.match(srv.stderr, /commands run without a sandbox: bubblewrap \(bwrap\) is not installed; apt-get install bubblewrap/);
            const r = await runOne(srv, fake, 'echo ran-$((6 * 7))');
            assert.match(r.stdout, /^ran-42$/m);
        } finally {
            await cleanup(srv, fake);
        }
    });

    test('a bad command.sandbox value is refused', async () => {
        const { spawnSync } = await import('node:child_process');
        const r = spawnSync(TARS_BIN, ['--port', '0', '--server.storage.type', 'memory', '--command.sandbox', 'docker'], { encoding: 'utf8', timeout: 10000 });
        assert.notEqual(r.status, 0);
        assert.match(r.stderr, /unknown command\.sandbox 'docker' \(use auto, bwrap or none\)/);
    });
});
