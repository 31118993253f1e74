// SPDX-License-Identifier: MIT
// Every built-in tool through the real binary and a scripted model (the `toolseq` scenario of
// lib/tools-scenarios.mjs): the tool_call event (name, parsed arguments, tool.schema), the
// tool_result (content on success; error and "Error: ..." content on refusal: a path outside
// the workspace, a symlink escape, bad arguments, a missing file), and the role:"tool" message
// the model receives next. Then the commands: timeout and abort kill the whole process group
// (checked in /proc), run_script with an interpreter, cwd confinement, no secrets in the
// environment. Last, the --tool.include / --tool.exclude filters. These run with the default
// command.sandbox (bubblewrap when installed); sandbox.test.mjs covers the sandbox itself.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe } from 'node:test';
import { startFakeOpenAI } from './lib/fake-openai.mjs';
import { assertEventBasics, assertFraming, assertRunEnd } from './lib/checks.mjs';
import {
    cleanup,
    collapsedTypes,
    createSession,
    ofType,
    post,
    startServer,
    tempDir,
    test,
    waitFor,
} from './lib/server.mjs';
import {
    addToolScenarios,
    finalText,
    killMarked,
    offeredTools,
    pidsWithMarker,
    rewrittenArgs,
    runTools,
    toolMessageIn,
    toolMessageText,
    uniqueMarker,
} from './lib/tools-scenarios.mjs';

addToolScenarios();

const ALL_TOOLS = [
    'read_file',
    'read_multiple_files',
    'write_file',
    'edit_file',
    'create_directory',
    'list_directory',
    'move_file',
    'search_files',
    'get_file_info',
    'list_allowed_directories',
    'directory_tree',
    'run_command',
    'run_script',
];

/** Whether the default command.sandbox ("auto") finds bubblewrap on this machine. */
const SANDBOXED = (process.env.PATH || '').split(':').concat(['/usr/bin', '/bin']).some((d) => d && fs.existsSync(path.join(d, 'bwrap')));

const outsideMsg = (abs, ws) => `Access denied - path outside allowed directories: ${abs} not in ${ws}`;
const symlinkMsg = (target, ws) => `Access denied - symlink target outside allowed directories: ${target} not in ${ws}`;
const enoent = (syscall, abs) => `ENOENT: no such file or directory, ${syscall} '${abs}'`;

/**
 * Checks one scripted run whose steps each made one call: expect[i] = { name, args, content }
 * (success: content deep-equals) or { name, args, error } (refusal). For each call: the
 * tool_call event (id from the assistant message, name, arguments as the model sent them, tool
 * with the schema the model was offered), the tool_result, and the tool message in the model's
 * next request. Then the final answer quoting the last tool message, and agent_run_end idle.
 */
function assertRoundTrips(run, expect) {
    assertFraming(run.out);
    assertEventBasics(run.events);
    const { calls, results, requests } = run;
    assert.equal(calls.length, expect.length, `tool_call events: ${collapsedTypes(run.events).join(',')}`);
    assert.equal(results.length, expect.length);
    assert.equal(requests.length, expect.length + 1, 'one LLM call per step plus the final one');
    const offered = new Map((requests[0].body.tools || []).map((t) => [t.function.name, t.function]));
    const asked = ofType(run.events, 'assistant_message').filter((m) => m.toolCalls);
    let lastText = null;
    expect.forEach((exp, i) => {
        const call = calls[i];
        const res = results[i];
        const where = `step ${i} (${exp.name})`;
        assert.equal(call.name, exp.name, where);
        assert.equal(call.toolCallId, asked[i].toolCalls[0].id, `${where}: toolCallId is the model's call id`);
        assert.deepEqual(call.arguments, rewrittenArgs(exp.name, exp.args, run.ws), `${where}: arguments`);
        assert.equal(typeof call.startTime, 'number');
        assert.equal(call.tool.name, exp.name, where);
        assert.equal(typeof call.tool.description, 'string');
        assert.ok(call.tool.description.length > 0, `${where}: description`);
        assert.ok(offered.has(exp.name), `${where}: the model was offered ${exp.name}`);
        assert.deepEqual(call.tool.schema, offered.get(exp.name).parameters, `${where}: tool.schema is the offered schema`);
        assert.equal(call.tool.schema.type, 'object');

        assert.equal(res.toolCallId, call.toolCallId, where);
        assert.equal(res.name, exp.name, where);
        assert.equal(typeof res.elapsedMs, 'number');
        if ('error' in exp) {
            const want = exp.error instanceof RegExp ? exp.error : null;
            if (want) assert.match(res.error, want, where);
            else assert.equal(res.error, exp.error, `${where}: error`);
            assert.equal(res.content, `Error: ${res.error}`, `${where}: content of a refusal`);
        } else {
            assert.equal(res.error, undefined, `${where}: unexpected error ${res.error}`);
            if (exp.content instanceof RegExp) assert.match(res.content, exp.content, where);
            else assert.deepEqual(res.content, exp.content, `${where}: content`);
        }
        const msg = toolMessageIn(requests[i + 1], call.toolCallId);
        assert.ok(msg, `${where}: the next request has a tool message for ${call.toolCallId}`);
        assert.equal(msg.content, toolMessageText(res.content), `${where}: tool message text`);
        lastText = msg.content;
    });
    assert.equal(run.final.content, finalText(lastText));
    assertRunEnd(run.events, run.sid, expect.length + 1);
}

/** The fields of /proc/<pid>/stat after the command name: [state, ppid, pgrp, session, ...]. */
function procStat(pid) {
    try {
        const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
        return s.slice(s.lastIndexOf(')') + 2).split(' ');
    } catch {
        return null;
    }
}

/** Waits until the marked `sleep` processes run; returns them (with pgrp and session). */
async function waitForMarked(marker, sleeps) {
    await waitFor(() => pidsWithMarker(marker).filter((p) => p.cmdline.startsWith('sleep ')).length >= sleeps, {
        timeoutMs: 5000,
        what: `${sleeps} sleep processes tagged ${marker}`,
    });
    return pidsWithMarker(marker).map((p) => {
        const st = procStat(p.pid) || [];
        return { ...p, pgrp: Number(st[2]), session: Number(st[3]) };
    });
}

/**
 * The marked shell and its sleeps share one process group (and session) of their own: led by
 * the /bin/sh -c shell without a sandbox, by the sandbox's first process (bwrap's init, in a
 * session of its own: --new-session) under bubblewrap. (bwrap and the command helper, whose
 * command lines quote the command too, are not counted.)
 */
function assertOwnGroup(procs, srv) {
    const shell = procs.find((p) => p.cmdline.startsWith('/bin/sh -c '));
    assert.ok(shell, `the shell is among ${JSON.stringify(procs)}`);
    const leader = SANDBOXED ? shell.pgrp : shell.pid;
    for (const p of procs.filter((q) => q.cmdline.startsWith('/bin/sh -c ') || q.cmdline.startsWith('sleep '))) {
        assert.equal(p.pgrp, leader, `process ${p.pid} (${p.cmdline}) is in the shell's group`);
        assert.equal(p.session, leader, `process ${p.pid} is in the shell's session (setsid)`);
    }
    const serverStat = procStat(srv.proc.pid);
    assert.notEqual(Number(serverStat[2]), leader, 'not the server group');
    assert.notEqual(Number(serverStat[3]), leader, 'not the server session');
}

async function assertNoneLeft(marker) {
    await waitFor(() => pidsWithMarker(marker).length === 0, {
        timeoutMs: 3000,
        what: `no process tagged ${marker} left (still: ${JSON.stringify(pidsWithMarker(marker))})`,
    });
}

// --------------------------------------------------------------------------------------------

describe('file tools through a scripted model', () => {
    let fake;
    let srv;
    let ws;
    let outside;

    before(async () => {
        fake = await startFakeOpenAI();
        srv = await startServer({ fake });
        ws = srv.workspace;
        outside = tempDir('tars-outside-');
        fs.writeFileSync(path.join(outside, 'secret.txt'), 'top secret\n');
        fs.writeFileSync(path.join(ws, 'hello.txt'), 'line one\nline two\n');
        fs.mkdirSync(path.join(ws, 'sub/deep'), { recursive: true });
        fs.writeFileSync(path.join(ws, 'sub/deep/notes.md'), '# notes\n');
        fs.writeFileSync(path.join(ws, 'sub/other.txt'), 'other');
        fs.mkdirSync(path.join(ws, 'sub/node_modules/pkg'), { recursive: true });
        fs.writeFileSync(path.join(ws, 'sub/node_modules/pkg/notes.js'), '');
        fs.symlinkSync('sub/deep/notes.md', path.join(ws, 'link-in')); // stays inside: allowed
        // links that lead out of the workspace: to a directory, to a file, and a dangling one
        fs.symlinkSync(outside, path.join(ws, 'link-out'));
        fs.symlinkSync(path.join(outside, 'secret.txt'), path.join(ws, 'link-file'));
        fs.symlinkSync(path.join(outside, 'created-through-link.txt'), path.join(ws, 'dangling'));
    });
    after(() => cleanup(srv, fake));

    test('the model is offered every built-in tool with an object schema', async () => {
        const run = await runTools(srv, fake, []);
        const tools = run.requests[0].body.tools;
        assert.deepEqual(offeredTools(run.requests[0]), ALL_TOOLS);
        for (const t of tools) {
            assert.equal(t.type, 'function');
            assert.equal(t.function.parameters.type, 'object', t.function.name);
            assert.ok(t.function.description.length > 0);
        }
        assert.equal(run.final.content, finalText('(none)'));
    });

    test('read_file: success (also via .. and a link inside), outside, absolute, symlink escape, missing, bad arguments', async () => {
        const steps = [
            ['read_file', { path: 'hello.txt' }],
            ['read_file', { path: path.join(ws, 'sub/../hello.txt') }],
            ['read_file', { path: 'link-in' }],
            ['read_file', { path: '../../etc/passwd' }],
            ['read_file', { path: path.join(outside, 'secret.txt') }],
            ['read_file', { path: 'link-file' }],
            ['read_file', { path: 'link-out/secret.txt' }],
            ['read_file', { path: 'missing.txt' }],
            ['read_file', { path: 7 }],
            ['read_file', {}],
        ];
        const run = await runTools(srv, fake, steps);
        const secret = path.join(outside, 'secret.txt');
        assertRoundTrips(run, [
            { name: 'read_file', args: steps[0][1], content: 'line one\nline two\n' },
            { name: 'read_file', args: steps[1][1], content: 'line one\nline two\n' },
            { name: 'read_file', args: steps[2][1], content: '# notes\n' },
            { name: 'read_file', args: steps[3][1], error: outsideMsg(path.resolve(ws, '../../etc/passwd'), ws) },
            { name: 'read_file', args: steps[4][1], error: outsideMsg(secret, ws) },
            { name: 'read_file', args: steps[5][1], error: symlinkMsg(secret, ws) },
            { name: 'read_file', args: steps[6][1], error: symlinkMsg(secret, ws) },
            { name: 'read_file', args: steps[7][1], error: enoent('open', path.join(ws, 'missing.txt')) },
            { name: 'read_file', args: steps[8][1], error: 'Invalid arguments for read_file: path must be a string' },
            { name: 'read_file', args: steps[9][1], error: 'Invalid arguments for read_file: path must be a string' },
        ]);
        for (const r of run.results) assert.ok(!String(r.content).includes('top secret'), 'nothing from outside leaked');
    });

    test('read_multiple_files: per-file errors inside one result; bad arguments refused', async () => {
        const steps = [
            ['read_multiple_files', { paths: ['hello.txt', 'sub/other.txt', 'missing.txt', '../x', 'link-file'] }],
            ['read_multiple_files', { paths: 'hello.txt' }],
            ['read_multiple_files', { paths: ['hello.txt', 3] }],
        ];
        const run = await runTools(srv, fake, steps);
        const secret = path.join(outside, 'secret.txt');
        const content = [
            `${path.join(ws, 'hello.txt')}:\nline one\nline two\n\n`,
            `${path.join(ws, 'sub/other.txt')}:\nother\n`,
            `${path.join(ws, 'missing.txt')}: Error - ${enoent('open', path.join(ws, 'missing.txt'))}`,
            `${path.resolve(ws, '../x')}: Error - ${outsideMsg(path.resolve(ws, '../x'), ws)}`,
            `${path.join(ws, 'link-file')}: Error - ${symlinkMsg(secret, ws)}`,
        ].join('\n---\n');
        const bad = 'Invalid arguments for read_multiple_files: paths must be an array of strings';
        assertRoundTrips(run, [
            { name: 'read_multiple_files', args: steps[0][1], content },
            { name: 'read_multiple_files', args: steps[1][1], error: bad },
            { name: 'read_multiple_files', args: steps[2][1], error: bad },
        ]);
    });

    test('write_file: success on disk; outside, through links and without a parent refused', async () => {
        const steps = [
            ['write_file', { path: 'written.txt', content: 'fresh ✓ text\n' }],
            ['write_file', { path: '../escaped-by-write.txt', content: 'pwned' }],
            ['write_file', { path: 'link-out/pwned.txt', content: 'pwned' }],
            ['write_file', { path: 'dangling', content: 'pwned' }],
            ['write_file', { path: 'no/such/dir/f.txt', content: 'x' }],
            ['write_file', { path: 'written2.txt' }],
        ];
        const run = await runTools(srv, fake, steps);
        assertRoundTrips(run, [
            { name: 'write_file', args: steps[0][1], content: `Successfully wrote to ${path.join(ws, 'written.txt')}` },
            { name: 'write_file', args: steps[1][1], error: outsideMsg(path.resolve(ws, '../escaped-by-write.txt'), ws) },
            { name: 'write_file', args: steps[2][1], error: symlinkMsg(path.join(outside, 'pwned.txt'), ws) },
            { name: 'write_file', args: steps[3][1], error: symlinkMsg(path.join(outside, 'created-through-link.txt'), ws) },
            { name: 'write_file', args: steps[4][1], error: enoent('open', path.join(ws, 'no/such/dir/f.txt')) },
            { name: 'write_file', args: steps[5][1], error: 'Invalid arguments for write_file: content must be a string' },
        ]);
        assert.equal(fs.readFileSync(path.join(ws, 'written.txt'), 'utf8'), 'fresh ✓ text\n');
        assert.equal(fs.existsSync(path.resolve(ws, '../escaped-by-write.txt')), false);
        assert.deepEqual(fs.readdirSync(outside), ['secret.txt'], 'nothing was written outside');
        assert.equal(fs.existsSync(path.join(ws, 'written2.txt')), false);
    });

    test('edit_file: diff and file change, dryRun, no match, missing, outside, bad arguments', async () => {
        const file = path.join(ws, 'edit-me.txt');
        fs.writeFileSync(file, 'alpha\nbeta\ngamma\n');
        const steps = [
            ['edit_file', { path: 'edit-me.txt', edits: [{ oldText: 'beta', newText: 'BETA' }] }],
            ['edit_file', { path: 'edit-me.txt', edits: [{ oldText: 'gamma', newText: 'GAMMA' }], dryRun: true }],
            ['edit_file', { path: 'edit-me.txt', edits: [{ oldText: 'not there', newText: 'x' }] }],
            ['edit_file', { path: 'missing.txt', edits: [{ oldText: 'a', newText: 'b' }] }],
            ['edit_file', { path: 'link-file', edits: [{ oldText: 'top', newText: 'no' }] }],
            ['edit_file', { path: 'edit-me.txt', edits: 'beta->x' }],
        ];
        const run = await runTools(srv, fake, steps);
        const diff = (from, to) =>
            '```diff\n' +
            `Index: ${file}\n` +
            '===================================================================\n' +
            `--- ${file}\toriginal\n` +
            `+++ ${file}\tmodified\n` +
            '@@ -1,3 +1,3 @@\n' +
            `${from}\n` +
            `${to}\n` +
            '```\n\n';
        assertRoundTrips(run, [
            { name: 'edit_file', args: steps[0][1], content: diff(' alpha\n-beta\n+BETA', ' gamma') },
            { name: 'edit_file', args: steps[1][1], content: diff(' alpha\n BETA\n-gamma', '+GAMMA') },
            { name: 'edit_file', args: steps[2][1], error: 'Could not find exact match for edit:\nnot there' },
            { name: 'edit_file', args: steps[3][1], error: enoent('open', path.join(ws, 'missing.txt')) },
            { name: 'edit_file', args: steps[4][1], error: symlinkMsg(path.join(outside, 'secret.txt'), ws) },
            {
                name: 'edit_file',
                args: steps[5][1],
                error: 'Invalid arguments for edit_file: edits must be an array of {oldText, newText} objects with string values',
            },
        ]);
        assert.equal(fs.readFileSync(file, 'utf8'), 'alpha\nBETA\ngamma\n', 'first edit written, dryRun and failures not');
        assert.equal(fs.readFileSync(path.join(outside, 'secret.txt'), 'utf8'), 'top secret\n');
    });

    test('create_directory: nested success; outside and through a link refused', async () => {
        const steps = [
            ['create_directory', { path: 'made/a/b' }],
            ['create_directory', { path: 'made/a/b' }],
            ['create_directory', { path: '../made-outside' }],
            ['create_directory', { path: 'link-out/newdir' }],
            ['create_directory', { path: ['made'] }],
        ];
        const run = await runTools(srv, fake, steps);
        const ok = `Successfully created directory ${path.join(ws, 'made/a/b')}`;
        assertRoundTrips(run, [
            { name: 'create_directory', args: steps[0][1], content: ok },
            { name: 'create_directory', args: steps[1][1], content: ok },
            { name: 'create_directory', args: steps[2][1], error: outsideMsg(path.resolve(ws, '../made-outside'), ws) },
            { name: 'create_directory', args: steps[3][1], error: symlinkMsg(path.join(outside, 'newdir'), ws) },
            { name: 'create_directory', args: steps[4][1], error: 'Invalid arguments for create_directory: path must be a string' },
        ]);
        assert.ok(fs.statSync(path.join(ws, 'made/a/b')).isDirectory());
        assert.equal(fs.existsSync(path.resolve(ws, '../made-outside')), false);
        assert.equal(fs.existsSync(path.join(outside, 'newdir')), false);
    });

    test('list_directory: entries; outside, through a link, missing and a file refused', async () => {
        const steps = [
            ['list_directory', { path: 'sub' }],
            ['list_directory', { path: '..' }],
            ['list_directory', { path: 'link-out' }],
            ['list_directory', { path: 'nowhere' }],
            ['list_directory', { path: 'hello.txt' }],
        ];
        const run = await runTools(srv, fake, steps);
        assertRoundTrips(run, [
            { name: 'list_directory', args: steps[0][1], content: '[DIR] deep\n[DIR] node_modules\n[FILE] other.txt' },
            { name: 'list_directory', args: steps[1][1], error: outsideMsg(path.dirname(ws), ws) },
            { name: 'list_directory', args: steps[2][1], error: symlinkMsg(outside, ws) },
            { name: 'list_directory', args: steps[3][1], error: enoent('scandir', path.join(ws, 'nowhere')) },
            { name: 'list_directory', args: steps[4][1], error: `ENOTDIR: not a directory, scandir '${path.join(ws, 'hello.txt')}'` },
        ]);
    });

    test('directory_tree: JSON tree without node_modules; outside, link and missing refused', async () => {
        const steps = [
            ['directory_tree', { path: 'sub' }],
            ['directory_tree', { path: 'sub', maxDepth: 1 }],
            ['directory_tree', { path: '/' }],
            ['directory_tree', { path: 'link-out' }],
            ['directory_tree', { path: 'nowhere' }],
            ['directory_tree', { path: 'sub', maxDepth: 'deep' }],
        ];
        const run = await runTools(srv, fake, steps);
        const tree = [
            { name: 'deep', type: 'directory', children: [{ name: 'notes.md', type: 'file' }] },
            { name: 'other.txt', type: 'file' },
        ];
        const shallow = [
            { name: 'deep', type: 'directory', children: [] },
            { name: 'other.txt', type: 'file' },
        ];
        const sub = path.join(ws, 'sub');
        assertRoundTrips(run, [
            {
                name: 'directory_tree',
                args: steps[0][1],
                content: `Directory tree for ${sub} (max depth: 3, files included: 3/1000)\n\n${JSON.stringify(tree, null, 2)}`,
            },
            {
                name: 'directory_tree',
                args: steps[1][1],
                content: `Directory tree for ${sub} (max depth: 1, files included: 2/1000)\n\n${JSON.stringify(shallow, null, 2)}`,
            },
            { name: 'directory_tree', args: steps[2][1], error: outsideMsg('/', ws) },
            { name: 'directory_tree', args: steps[3][1], error: symlinkMsg(outside, ws) },
            { name: 'directory_tree', args: steps[4][1], error: /^ENOENT: no such file or directory, .*nowhere/ },
            { name: 'directory_tree', args: steps[5][1], error: 'Invalid arguments for directory_tree: maxDepth must be a number' },
        ]);
    });

    test('move_file: rename; existing destination, outside on either side and missing source refused', async () => {
        fs.writeFileSync(path.join(ws, 'move-src.txt'), 'moving');
        fs.writeFileSync(path.join(ws, 'move-other.txt'), 'stays');
        const steps = [
            ['move_file', { source: 'move-src.txt', destination: 'sub/moved.txt' }],
            ['move_file', { source: 'move-other.txt', destination: 'sub/moved.txt' }],
            ['move_file', { source: 'move-other.txt', destination: '../moved-out.txt' }],
            ['move_file', { source: 'move-other.txt', destination: 'link-out/moved-out.txt' }],
            ['move_file', { source: 'link-file', destination: 'stolen.txt' }],
            ['move_file', { source: 'nothing.txt', destination: 'sub/nothing.txt' }],
            ['move_file', { source: 'move-other.txt' }],
        ];
        const run = await runTools(srv, fake, steps);
        const src = path.join(ws, 'move-src.txt');
        const dst = path.join(ws, 'sub/moved.txt');
        assertRoundTrips(run, [
            { name: 'move_file', args: steps[0][1], content: `Successfully moved ${src} to ${dst}` },
            { name: 'move_file', args: steps[1][1], error: `Destination already exists: ${dst}` },
            { name: 'move_file', args: steps[2][1], error: outsideMsg(path.resolve(ws, '../moved-out.txt'), ws) },
            { name: 'move_file', args: steps[3][1], error: symlinkMsg(path.join(outside, 'moved-out.txt'), ws) },
            { name: 'move_file', args: steps[4][1], error: symlinkMsg(path.join(outside, 'secret.txt'), ws) },
            {
                name: 'move_file',
                args: steps[5][1],
                error: `ENOENT: no such file or directory, rename '${path.join(ws, 'nothing.txt')}' -> '${path.join(ws, 'sub/nothing.txt')}'`,
            },
            { name: 'move_file', args: steps[6][1], error: 'Invalid arguments for move_file: destination must be a string' },
        ]);
        assert.equal(fs.readFileSync(dst, 'utf8'), 'moving');
        assert.equal(fs.existsSync(src), false);
        assert.equal(fs.readFileSync(path.join(ws, 'move-other.txt'), 'utf8'), 'stays');
        assert.deepEqual(fs.readdirSync(outside), ['secret.txt']);
        assert.ok(fs.lstatSync(path.join(ws, 'link-file')).isSymbolicLink(), 'the link stayed');
    });

    test('search_files: matches (node_modules skipped), no match, outside and link refused', async () => {
        const steps = [
            ['search_files', { path: '.', pattern: 'NOTES' }],
            ['search_files', { path: 'sub', pattern: 'zzz-nothing' }],
            ['search_files', { path: '..', pattern: 'secret' }],
            ['search_files', { path: 'link-out', pattern: 'secret' }],
            ['search_files', { path: '.' }],
        ];
        const run = await runTools(srv, fake, steps);
        assertRoundTrips(run, [
            { name: 'search_files', args: steps[0][1], content: path.join(ws, 'sub/deep/notes.md') },
            { name: 'search_files', args: steps[1][1], content: 'No matches found' },
            { name: 'search_files', args: steps[2][1], error: outsideMsg(path.dirname(ws), ws) },
            { name: 'search_files', args: steps[3][1], error: symlinkMsg(outside, ws) },
            { name: 'search_files', args: steps[4][1], error: 'Invalid arguments for search_files: pattern must be a string' },
        ]);
        // the walk does not follow the link out of the workspace either
        const r2 = await runTools(srv, fake, [['search_files', { path: '.', pattern: 'secret' }]]);
        assert.equal(r2.results[0].content, 'No matches found');
    });

    test('get_file_info: the seven lines; outside, link and missing refused', async () => {
        const steps = [
            ['get_file_info', { path: 'hello.txt' }],
            ['get_file_info', { path: 'sub' }],
            ['get_file_info', { path: '../' }],
            ['get_file_info', { path: 'link-file' }],
            ['get_file_info', { path: 'missing.txt' }],
        ];
        const run = await runTools(srv, fake, steps);
        const date = String.raw`[A-Z][a-z]{2} [A-Z][a-z]{2} \d{2} \d{4} \d{2}:\d{2}:\d{2} GMT[+-]\d{4} \(.+\)`;
        const info = (size, dir) =>
            new RegExp(
                `^size: ${size}\\ncreated: ${date}\\nmodified: ${date}\\naccessed: ${date}\\nisDirectory: ${dir}\\nisFile: ${!dir}\\npermissions: [0-7]{3}$`,
            );
        assertRoundTrips(run, [
            { name: 'get_file_info', args: steps[0][1], content: info(18, false) },
            { name: 'get_file_info', args: steps[1][1], content: info('\\d+', true) },
            { name: 'get_file_info', args: steps[2][1], error: outsideMsg(path.dirname(ws), ws) },
            { name: 'get_file_info', args: steps[3][1], error: symlinkMsg(path.join(outside, 'secret.txt'), ws) },
            { name: 'get_file_info', args: steps[4][1], error: /^ENOENT: no such file or directory, \w+ '.*missing\.txt'$/ },
        ]);
        const mode = (fs.statSync(path.join(ws, 'hello.txt')).mode & 0o777).toString(8);
        assert.match(run.results[0].content, new RegExp(`permissions: ${mode}$`));
    });

    test('list_allowed_directories: the workspace', async () => {
        const steps = [['list_allowed_directories', {}]];
        const run = await runTools(srv, fake, steps);
        assertRoundTrips(run, [{ name: 'list_allowed_directories', args: {}, content: `Allowed directories:\n${ws}` }]);
    });

    test('several calls in one assistant message: run in order, one tool message each', async () => {
        const run = await runTools(srv, fake, [
            {
                calls: [
                    ['write_file', { path: 'par.txt', content: 'P' }],
                    ['read_file', { path: 'par.txt' }],
                    ['read_file', { path: '/etc/hostname' }],
                ],
            },
        ]);
        assert.deepEqual(
            run.calls.map((c) => c.name),
            ['write_file', 'read_file', 'read_file'],
        );
        assert.deepEqual(collapsedTypes(run.events).filter((t) => t.startsWith('tool_')), [
            'tool_call',
            'tool_result',
            'tool_call',
            'tool_result',
            'tool_call',
            'tool_result',
        ]);
        assert.equal(run.results[1].content, 'P');
        assert.equal(run.results[2].error, outsideMsg('/etc/hostname', ws));
        const msgs = run.requests[1].body.messages;
        const roles = msgs.map((m) => m.role);
        assert.deepEqual(roles.slice(-4), ['assistant', 'tool', 'tool', 'tool']);
        assert.deepEqual(
            msgs.slice(-3).map((m) => m.tool_call_id),
            run.calls.map((c) => c.toolCallId),
        );
        assert.deepEqual(
            msgs.slice(-3).map((m) => m.content),
            run.results.map((r) => toolMessageText(r.content)),
        );
        assert.equal(run.final.content, finalText(`Error: ${outsideMsg('/etc/hostname', ws)}`));
    });

    test('arguments that are not JSON: a tool_result without tool_call, and the loop goes on', async () => {
        const run = await runTools(srv, fake, [['read_file', '{"path": "hello.txt"'], ['read_file', { path: 'hello.txt' }]]);
        assert.equal(run.calls.length, 1, 'only the second call has a tool_call event');
        assert.equal(run.results.length, 2);
        const [bad, good] = run.results;
        assert.match(bad.error, /^Invalid JSON in tool arguments: /);
        assert.equal(bad.content, `Error: ${bad.error}`);
        assert.equal(bad.name, 'read_file');
        const asked = ofType(run.events, 'assistant_message').filter((m) => m.toolCalls);
        assert.equal(bad.toolCallId, asked[0].toolCalls[0].id);
        assert.equal(toolMessageIn(run.requests[1], bad.toolCallId).content, bad.content);
        assert.equal(good.content, 'line one\nline two\n');
        assertRunEnd(run.events, run.sid, 3);
    });

    test('an unknown tool: tool_call with "Unknown tool" and an empty schema, then not found', async () => {
        const run = await runTools(srv, fake, [['delete_everything', { path: '.' }]]);
        const [call] = run.calls;
        assert.deepEqual(call.tool, { name: 'delete_everything', description: 'Unknown tool', schema: {} });
        assert.deepEqual(call.arguments, { path: '.' });
        assert.equal(run.results[0].error, 'Tool "delete_everything" not found');
        assert.equal(run.results[0].content, 'Error: Tool "delete_everything" not found');
        assert.equal(toolMessageIn(run.requests[1], call.toolCallId).content, 'Error: Tool "delete_everything" not found');
        assert.ok(fs.existsSync(path.join(ws, 'hello.txt')));
    });

    test(
        'tool_call.arguments shows relative paths resolved against the workspace (anchor-api.md §4.2, §6.4)',

        async () => {
            const run = await runTools(srv, fake, [['read_file', { path: 'hello.txt' }]]);
            assert.deepEqual(run.calls[0].arguments, { path: path.join(ws, 'hello.txt') });
        },
    );
});

// --------------------------------------------------------------------------------------------

describe('commands through a scripted model', () => {
    const MODEL_KEY = 'sk-model-key-for-commands-4d2f9a';
    let fake;
    let srv;
    let ws;
    let outside;

    before(async () => {
        fake = await startFakeOpenAI();
        srv = await startServer({
            fake,
            apiKey: MODEL_KEY,
            args: ['--command.passEnv', 'TARS_IT_VISIBLE'],
            env: {
                OPENAI_API_KEY: 'sk-env-openai-key-0a1b2c3d4e',
                GITHUB_TOKEN: 'ghp_envtoken0123456789',
                TARS_IT_DB_PASSWORD: 'hunter2-password',
                TARS_IT_INNOCENT_NAME: MODEL_KEY,
                TARS_IT_VISIBLE: 'visible-value-42',
            },
        });
        ws = srv.workspace;
        outside = tempDir('tars-outside-');
        fs.mkdirSync(path.join(ws, 'sub'));
        fs.writeFileSync(path.join(ws, 'a.txt'), 'a');
        fs.symlinkSync(outside, path.join(ws, 'link-out'));
    });
    after(() => cleanup(srv, fake));

    test('run_command: STDOUT and STDERR parts; the tool message is their JSON text', async () => {
        const steps = [
            ['run_command', { command: 'echo out; echo err >&2' }],
            ['run_command', { command: 'true' }],
            ['run_command', { command: 'echo partial; echo broken >&2; exit 3' }],
            ['run_command', { command: 'kill -9 $$' }],
        ];
        const run = await runTools(srv, fake, steps);
        assertRoundTrips(run, [
            {
                name: 'run_command',
                args: steps[0][1],
                content: [
                    { type: 'text', text: 'out\n', name: 'STDOUT' },
                    { type: 'text', text: 'err\n', name: 'STDERR' },
                ],
            },
            { name: 'run_command', args: steps[1][1], content: [] },
            {
                name: 'run_command',
                args: steps[2][1],
                content: [
                    { type: 'text', text: `Command failed: ${steps[2][1].command}\nbroken\n`, name: 'ERROR', exitCode: 3 },
                    { type: 'text', text: 'partial\n', name: 'STDOUT' },
                    { type: 'text', text: 'broken\n', name: 'STDERR' },
                ],
            },
            {
                name: 'run_command',
                args: steps[3][1],
                // bwrap reports a command killed by a signal as exit status 128 + n, as shells do
                content: [
                    SANDBOXED
                        ? { type: 'text', text: `Command failed: ${steps[3][1].command}\n`, name: 'ERROR', exitCode: 137 }
                        : { type: 'text', text: `Command failed: ${steps[3][1].command}\n`, name: 'ERROR', exitCode: null, signal: 'SIGKILL' },
                ],
            },
        ]);
        // what the original's model reads: the parts stringified with two-space indentation
        assert.equal(
            toolMessageIn(run.requests[1], run.calls[0].toolCallId).content,
            '[\n  {\n    "type": "text",\n    "text": "out\\n",\n    "name": "STDOUT"\n  },\n' +
                '  {\n    "type": "text",\n    "text": "err\\n",\n    "name": "STDERR"\n  }\n]',
        );
        assert.equal(toolMessageIn(run.requests[2], run.calls[1].toolCallId).content, '[]');
    });

    test('run_command: refusals (empty, not a string, cwd outside / via link / missing / a file)', async () => {
        const mark = uniqueMarker('ran');
        const steps = [
            ['run_command', { command: '   ' }],
            ['run_command', { command: ['ls'] }],
            ['run_command', { command: `touch ${mark}`, cwd: '..' }],
            ['run_command', { command: `touch ${mark}`, cwd: '/tmp' }],
            ['run_command', { command: `touch ${mark}`, cwd: 'link-out' }],
            ['run_command', { command: `touch ${mark}`, cwd: 'nowhere' }],
            ['run_command', { command: `touch ${mark}`, cwd: 'a.txt' }],
            ['run_command', { command: 'pwd', cwd: 7 }],
        ];
        const run = await runTools(srv, fake, steps);
        assertRoundTrips(run, [
            { name: 'run_command', args: steps[0][1], error: 'Command is required' },
            { name: 'run_command', args: steps[1][1], error: 'Invalid arguments for run_command: command must be a string' },
            { name: 'run_command', args: steps[2][1], error: outsideMsg(path.dirname(ws), ws) },
            { name: 'run_command', args: steps[3][1], error: outsideMsg('/tmp', ws) },
            { name: 'run_command', args: steps[4][1], error: symlinkMsg(outside, ws) },
            { name: 'run_command', args: steps[5][1], error: enoent('chdir', path.join(ws, 'nowhere')) },
            { name: 'run_command', args: steps[6][1], error: `ENOTDIR: not a directory, chdir '${path.join(ws, 'a.txt')}'` },
            { name: 'run_command', args: steps[7][1], error: 'Invalid arguments for run_command: cwd must be a string' },
        ]);
        for (const dir of [ws, path.dirname(ws), '/tmp', outside, process.cwd()]) {
            assert.equal(fs.existsSync(path.join(dir, mark)), false, `no refused command ran (${dir})`);
        }
    });

    test('cwd: the workspace by default, a subdirectory when asked; PWD follows', async () => {
        const steps = [
            ['run_command', { command: 'pwd; echo "$PWD"' }],
            ['run_command', { command: 'pwd; echo "$PWD"', cwd: 'sub' }],
            ['run_command', { command: 'pwd', cwd: '' }],
            ['run_command', { command: 'pwd', cwd: path.join(ws, 'sub') }],
        ];
        const run = await runTools(srv, fake, steps);
        const out = (t) => [{ type: 'text', text: t, name: 'STDOUT' }];
        const sub = path.join(ws, 'sub');
        assertRoundTrips(run, [
            { name: 'run_command', args: steps[0][1], content: out(`${ws}\n${ws}\n`) },
            { name: 'run_command', args: steps[1][1], content: out(`${sub}\n${sub}\n`) },
            { name: 'run_command', args: steps[2][1], content: out(`${ws}\n`) },
            { name: 'run_command', args: steps[3][1], content: out(`${sub}\n`) },
        ]);
    });

    test('the environment is an allow-list: no OPENAI_API_KEY, *_TOKEN, *PASSWORD*, model key; passEnv passes', async () => {
        const steps = [
            ['run_command', { command: 'env' }],
            ['run_script', { interpreter: 'node', script: 'console.log(String(process.env.OPENAI_API_KEY));\n' }],
        ];
        const run = await runTools(srv, fake, steps);
        const [envRes, nodeRes] = run.results;
        assert.equal(envRes.error, undefined);
        const stdout = envRes.content.find((p) => p.name === 'STDOUT').text;
        const vars = new Map(
            stdout
                .split('\n')
                .filter((l) => /^[A-Za-z_][A-Za-z0-9_]*=/.test(l))
                .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
        );
        assert.equal(vars.get('TARS_IT_VISIBLE'), 'visible-value-42', 'command.passEnv passes a variable');
        assert.ok(vars.has('PATH'));
        assert.equal(vars.get('HOME'), ws, 'HOME is the workspace');
        for (const name of ['OPENAI_API_KEY', 'GITHUB_TOKEN', 'TARS_IT_DB_PASSWORD', 'TARS_IT_INNOCENT_NAME']) {
            assert.equal(vars.has(name), false, `${name} is not passed to commands`);
        }
        for (const secret of ['sk-env-openai-key-0a1b2c3d4e', 'ghp_envtoken0123456789', 'hunter2-password', MODEL_KEY]) {
            assert.ok(!stdout.includes(secret), `the value ${secret} does not reach the command`);
        }
        assert.deepEqual(nodeRes.content, [{ type: 'text', text: 'undefined\n', name: 'STDOUT' }]);
        // nor the model, through the tool message
        for (const r of run.requests) assert.ok(!r.rawBody.includes('sk-env-openai-key-0a1b2c3d4e'));
    });

    test('run_script: interpreters, stdin, cwd, refusals', async () => {
        const steps = [
            ['run_script', { interpreter: 'node', script: 'console.log(6 * 7);\nconsole.log(process.cwd());\nprocess.stderr.write("node-err\\n");\n' }],
            ['run_script', { script: 'echo "$0"; read -r x || echo "stdin closed"' }],
            ['run_script', { interpreter: 'sh', script: 'pwd', cwd: 'sub' }],
            ['run_script', { interpreter: 'node --no-warnings', script: 'process.exitCode = 4;\n' }],
            ['run_script', { interpreter: 'node', script: '' }],
            ['run_script', { interpreter: 'bash' }],
            ['run_script', { script: 'pwd', cwd: '../' }],
        ];
        const run = await runTools(srv, fake, steps);
        assertRoundTrips(run, [
            {
                name: 'run_script',
                args: steps[0][1],
                content: [
                    { type: 'text', text: `42\n${ws}\n`, name: 'STDOUT' },
                    { type: 'text', text: 'node-err\n', name: 'STDERR' },
                ],
            },
            { name: 'run_script', args: steps[1][1], content: [{ type: 'text', text: 'bash\nstdin closed\n', name: 'STDOUT' }] },
            { name: 'run_script', args: steps[2][1], content: [{ type: 'text', text: `${path.join(ws, 'sub')}\n`, name: 'STDOUT' }] },
            { name: 'run_script', args: steps[3][1], content: [{ type: 'text', text: 'Command failed: node --no-warnings\n', name: 'ERROR', exitCode: 4 }] },
            { name: 'run_script', args: steps[4][1], error: 'Script is required' },
            { name: 'run_script', args: steps[5][1], error: 'Invalid arguments for run_script: script must be a string' },
            { name: 'run_script', args: steps[6][1], error: outsideMsg(path.dirname(ws), ws) },
        ]);
    });

    test('abort mid-command: the stream ends aborted at once and the process group is killed', async () => {
        const sid = await createSession(srv);
        const dur = `300.${process.pid}${Date.now() % 100000}`; // a duration no other process uses
        const mark = dur;
        const command = `echo started; sleep ${dur} & sleep ${dur}; echo never`;
        let procs = null;
        let abortRes = null;
        let abortedAt = 0;
        try {
            const t0 = Date.now();
            const run = await runTools(srv, fake, [['run_command', { command }]], {
                sid,
                onEvent: async (ev) => {
                    if (ev.type !== 'tool_call' || abortRes) return;
                    procs = await waitForMarked(mark, 2);
                    abortRes = await post(srv, '/api/sessions/abort', { sessionId: sid });
                    abortedAt = Date.now();
                },
            });
            assert.ok(procs, 'the command was running when we aborted');
            assertOwnGroup(procs, srv);
            assert.equal(procs.filter((p) => p.cmdline.startsWith('sleep ')).length, 2, JSON.stringify(procs));
            assert.deepEqual(abortRes.json, { success: true });
            assert.ok(Date.now() - abortedAt < 3000, 'the stream ended promptly after the abort');
            assert.ok(Date.now() - t0 < 10000);
            assertFraming(run.out);
            const types = collapsedTypes(run.events);
            assert.deepEqual(types.slice(-3), ['system', 'assistant_message', 'agent_run_end'], types.join(','));
            const [sys, msg, end] = run.events.slice(-3);
            assert.equal(sys.message, 'Request was aborted');
            assert.equal(msg.content, 'Request was aborted');
            assert.equal(msg.finishReason, 'abort');
            assert.equal(end.status, 'aborted');
            assert.equal(end.sessionId, sid);
            assert.equal(run.requests.length, 1, 'no LLM call after the abort');
            await assertNoneLeft(mark);

            // the session goes on; the aborted call has an answer in the history
            const next = await runTools(srv, fake, [['run_command', { command: 'echo again' }]], { sid });
            assert.deepEqual(next.results[0].content, [{ type: 'text', text: 'again\n', name: 'STDOUT' }]);
            const hist = next.requests[0].body.messages;
            const toolMsg = toolMessageIn(next.requests[0], run.calls[0].toolCallId);
            assert.ok(toolMsg, `the aborted call is answered in the history: ${JSON.stringify(hist.map((m) => m.role))}`);
            assert.equal(toolMsg.content, 'Error: Request was aborted');
        } finally {
            killMarked(mark);
        }
    });

    test('a background child ends with the command: the result comes at once, nothing is left', async () => {
        const dur = `304.${process.pid}${Date.now() % 100000}`;
        try {
            const t0 = Date.now();
            const run = await runTools(srv, fake, [['run_command', { command: `sleep ${dur} & setsid sleep ${dur} & echo bg` }]]);
            const took = Date.now() - t0;
            assert.deepEqual(run.results[0].content, [{ type: 'text', text: 'bg\n', name: 'STDOUT' }]);
            assert.ok(took < 900, `the run took ${took} ms (no grace second waited)`);
            await assertNoneLeft(dur);
        } finally {
            killMarked(dur);
        }
    });

    test('server shutdown mid-command kills the process group too', async () => {
        const own = await startServer({ fake });
        const dur = `301.${process.pid}${Date.now() % 100000}`;
        try {
            const sid = await createSession(own);
            const streaming = runTools(own, fake, [['run_command', { command: `sleep ${dur} & sleep ${dur}` }]], { sid }).catch((e) => e);
            const procs = await waitForMarked(dur, 2);
            assertOwnGroup(procs, own);
            await own.stop();
            await streaming;
            await assertNoneLeft(dur);
        } finally {
            killMarked(dur);
            await cleanup(own);
        }
    });
});

describe('command timeout and output caps (config "command")', () => {
    let fake;
    let srv;
    let cfgDir;

    before(async () => {
        fake = await startFakeOpenAI();
        cfgDir = tempDir('tars-cfg-');
        const cfg = path.join(cfgDir, 'config.json');
        fs.writeFileSync(cfg, JSON.stringify({ command: { timeoutMs: 1000, maxOutputBytes: 100 } }));
        srv = await startServer({ fake, args: ['--config', cfg] });
    });
    after(() => cleanup(srv, fake));

    test('a command that outlives timeoutMs: ERROR part with SIGKILL, group gone', async () => {
        const dur = `302.${process.pid}${Date.now() % 100000}`;
        const command = `echo started; sleep ${dur} & sleep ${dur}; echo never`;
        let procs = null;
        try {
            const run = await runTools(srv, fake, [['run_command', { command }]], {
                onEvent: async (ev) => {
                    if (ev.type === 'tool_call') procs = await waitForMarked(dur, 2);
                },
            });
            assert.ok(procs);
            assertOwnGroup(procs, srv);
            assertRoundTrips(run, [
                {
                    name: 'run_command',
                    args: { command },
                    content: [
                        { type: 'text', text: `Command timed out after 1000 ms: ${command}\n`, name: 'ERROR', exitCode: null, signal: 'SIGKILL' },
                        { type: 'text', text: 'started\n', name: 'STDOUT' },
                    ],
                },
            ]);
            const ms = run.results[0].elapsedMs;
            assert.ok(ms >= 950 && ms < 4000, `elapsedMs ${ms}`);
            await assertNoneLeft(dur);
        } finally {
            killMarked(dur);
        }
    });

    test('run_script past the timeout is killed the same way', async () => {
        const dur = `303.${process.pid}${Date.now() % 100000}`;
        try {
            const run = await runTools(srv, fake, [['run_script', { interpreter: 'sh', script: `sleep ${dur} &\nsleep ${dur}\n` }]], {
                onEvent: async (ev) => {
                    if (ev.type === 'tool_call') await waitForMarked(dur, 2);
                },
            });
            assert.deepEqual(run.results[0].content, [
                { type: 'text', text: 'Command timed out after 1000 ms: sh\n', name: 'ERROR', exitCode: null, signal: 'SIGKILL' },
            ]);
            await assertNoneLeft(dur);
        } finally {
            killMarked(dur);
        }
    });

    test('a quick command under the same config is not affected; output over the cap is cut', async () => {
        const steps = [
            ['run_command', { command: 'sleep 0.2; echo fine' }],
            ['run_command', { command: "head -c 5000 /dev/zero | tr '\\0' a; head -c 150 /dev/zero | tr '\\0' b >&2" }],
        ];
        const run = await runTools(srv, fake, steps);
        assertRoundTrips(run, [
            { name: 'run_command', args: steps[0][1], content: [{ type: 'text', text: 'fine\n', name: 'STDOUT' }] },
            {
                name: 'run_command',
                args: steps[1][1],
                content: [
                    { type: 'text', text: `${'a'.repeat(100)}\n[truncated: stdout went over 100 bytes; 4900 more bytes were dropped]`, name: 'STDOUT' },
                    { type: 'text', text: `${'b'.repeat(100)}\n[truncated: stderr went over 100 bytes; 50 more bytes were dropped]`, name: 'STDERR' },
                ],
            },
        ]);
    });

    test('--command.timeoutMs on the command line works like the config key', async () => {
        const own = await startServer({ fake, args: ['--command.timeoutMs', '700'] });
        try {
            const run = await runTools(own, fake, [['run_command', { command: 'sleep 5' }]]);
            assert.deepEqual(run.results[0].content, [
                { type: 'text', text: 'Command timed out after 700 ms: sleep 5\n', name: 'ERROR', exitCode: null, signal: 'SIGKILL' },
            ]);
        } finally {
            await cleanup(own);
        }
    });
});

// --------------------------------------------------------------------------------------------

describe('web_search (built-in)', () => {
    let fake;
    let searx;
    let srv;
    let plain;
    const PAGES = [{ title: 'Agent TARS', url: 'https://agent-tars.com/', content: 'A multimodal AI agent' }];

    before(async () => {
        fake = await startFakeOpenAI();
        const server = http.createServer((req, res) => {
            const body = JSON.stringify({ query: 'x', results: PAGES });
            res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
            res.end(body);
        });
        await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
        searx = { close: () => new Promise((resolve) => server.close(() => resolve())), url: `http://127.0.0.1:${server.address().port}` };
        srv = await startServer({ fake, args: ['--search.provider', 'searxng', '--search.baseURL', searx.url] });
        plain = await startServer({ fake });
    });
    after(() => cleanup(srv, plain, fake, searx));

    test('success, empty query and bad count through the scripted model', async () => {
        const steps = [
            ['web_search', { query: 'agent tars' }],
            ['web_search', { query: '' }],
            ['web_search', { query: 'x', count: 'many' }],
        ];
        const run = await runTools(srv, fake, steps);
        assert.equal(offeredTools(run.requests[0])[0], 'web_search');
        assertRoundTrips(run, [
            { name: 'web_search', args: steps[0][1], content: JSON.stringify(PAGES, null, 2) },
            { name: 'web_search', args: steps[1][1], error: 'Search query is required' },
            { name: 'web_search', args: steps[2][1], error: 'Invalid arguments for web_search: count must be a number' },
        ]);
    });

    test('without a provider web_search is not offered, and calling it gives not found', async () => {
        const run = await runTools(plain, fake, [['web_search', { query: 'x' }]]);
        assert.deepEqual(offeredTools(run.requests[0]), ALL_TOOLS);
        assert.equal(run.results[0].error, 'Tool "web_search" not found');
        assert.deepEqual(run.calls[0].tool, { name: 'web_search', description: 'Unknown tool', schema: {} });
    });
});

// --------------------------------------------------------------------------------------------

describe('--tool.include / --tool.exclude', () => {
    let fake;
    const servers = [];

    before(async () => {
        fake = await startFakeOpenAI();
    });
    after(() => cleanup(...servers, fake));

    async function serverWith(args) {
        const s = await startServer({ fake, args });
        servers.push(s);
        return s;
    }

    /** A filtered-out tool called anyway: tool_call with the unknown-tool description, not found. */
    function assertFilteredOut(run, i, name) {
        assert.equal(run.calls[i].name, name);
        assert.deepEqual(run.calls[i].tool, { name, description: 'Unknown tool', schema: {} });
        assert.equal(run.results[i].error, `Tool "${name}" not found`);
        assert.equal(run.results[i].content, `Error: Tool "${name}" not found`);
        assert.equal(toolMessageIn(run.requests[i + 1], run.calls[i].toolCallId).content, `Error: Tool "${name}" not found`);
    }

    test('--tool.include file: only names containing "file"; others are not found', async () => {
        const srv = await serverWith(['--tool.include', 'file']);
        fs.writeFileSync(path.join(srv.workspace, 'f.txt'), 'F');
        const run = await runTools(srv, fake, [['list_directory', { path: '.' }], ['read_file', { path: 'f.txt' }]]);
        assert.deepEqual(offeredTools(run.requests[0]), [
            'read_file',
            'read_multiple_files',
            'write_file',
            'edit_file',
            'move_file',
            'search_files',
            'get_file_info',
        ]);
        assertFilteredOut(run, 0, 'list_directory');
        assert.equal(run.results[1].content, 'F');
        assert.equal(run.calls[1].tool.name, 'read_file');
    });

    test('--tool.exclude run_,directory: commands and directory tools gone; a command called anyway does not run', async () => {
        const srv = await serverWith(['--tool.exclude', 'run_,directory']);
        const mark = uniqueMarker('excluded');
        const run = await runTools(srv, fake, [
            ['run_command', { command: `touch ${mark}` }],
            ['directory_tree', { path: '.' }],
            ['get_file_info', { path: '.' }],
        ]);
        assert.deepEqual(
            offeredTools(run.requests[0]),
            ALL_TOOLS.filter((n) => !n.includes('run_') && !n.includes('directory')),
        );
        assertFilteredOut(run, 0, 'run_command');
        assertFilteredOut(run, 1, 'directory_tree');
        assert.match(run.results[2].content, /^size: /);
        assert.equal(fs.existsSync(path.join(srv.workspace, mark)), false, 'the excluded command did not run');
        // every request of the run offers the same filtered list
        for (const r of run.requests) assert.deepEqual(offeredTools(r), offeredTools(run.requests[0]));
    });

    test('include and exclude together: exclude wins inside the included set', async () => {
        const srv = await serverWith(['--tool.include', 'file,run_command', '--tool.exclude', 'multiple,edit']);
        const run = await runTools(srv, fake, [['edit_file', { path: 'x', edits: [] }], ['run_command', { command: 'echo ok' }]]);
        assert.deepEqual(offeredTools(run.requests[0]), ['read_file', 'write_file', 'move_file', 'search_files', 'get_file_info', 'run_command']);
        assertFilteredOut(run, 0, 'edit_file');
        assert.deepEqual(run.results[1].content, [{ type: 'text', text: 'ok\n', name: 'STDOUT' }]);
    });

    test('the config file form {"tool": {"include": [...], "exclude": [...]}}', async () => {
        const cfg = path.join(tempDir('tars-cfg-'), 'config.json');
        fs.writeFileSync(cfg, JSON.stringify({ tool: { include: ['list_', 'read_file'], exclude: ['allowed'] } }));
        const srv = await serverWith(['--config', cfg]);
        const run = await runTools(srv, fake, [['write_file', { path: 'w.txt', content: 'w' }]]);
        assert.deepEqual(offeredTools(run.requests[0]), ['read_file', 'list_directory']);
        assertFilteredOut(run, 0, 'write_file');
        assert.equal(fs.existsSync(path.join(srv.workspace, 'w.txt')), false);
    });
});
