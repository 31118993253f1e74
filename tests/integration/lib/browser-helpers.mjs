// SPDX-License-Identifier: MIT
// For mcp-browser.test.mjs (not a test file itself): the `browse` scenario of the scripted model,
// a small HTML site on 127.0.0.1, and a /proc reader that finds the chromium processes of a
// browser profile, so that the test can tell whether any of them outlived the server.

import fs from 'node:fs';
import http from 'node:http';
import * as fakeOpenAI from './fake-openai.mjs';
import { q } from './server.mjs';

export const MAGIC_WORD = 'periwinkle-4711';
export const PAGE_TITLE = 'Loopback Browser Test';
export const PAGE_HEADING = 'Hello from the loopback page';

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>${PAGE_TITLE}</title></head>
<body>
<h1>${PAGE_HEADING}</h1>
<p>The magic word is <b>${MAGIC_WORD}</b>.</p>
<p><a href="/second.html">Second page</a></p>
<input id="q" placeholder="type here"> <button id="go">Go</button>
</body></html>
`;
const SECOND = '<!doctype html><html><head><title>Second</title></head><body><p>second page</p></body></html>\n';

/**
 * Registers the `browse` scenario. Marker params: `steps`, a base64url JSON array of [tool, args]
 * pairs called one per model turn; after the last one the model answers with
 * toolFinalText(last tool message). Build the query with browseQuery().
 */
export function addBrowseScenario() {
    fakeOpenAI.addScenarios({
        browse(s, a) {
            const steps = JSON.parse(Buffer.from(a.params.steps || 'W10', 'base64url').toString('utf8'));
            if (a.step < steps.length) s.tools([steps[a.step]]);
            else s.text(fakeOpenAI.toolFinalText(a.lastTool === null ? '(none)' : a.lastTool));
        },
    });
}

/** The query for `browse`: steps = [[tool, args], ...], one call per model turn. */
export function browseQuery(steps, text = 'look at the page') {
    return q(`browse steps=${Buffer.from(JSON.stringify(steps)).toString('base64url')}`, text);
}

/**
 * Serves the test page at / and a second page on 127.0.0.1 (a free port). Returns
 * { url, port, hits: [{url, userAgent}], close() }.
 */
export async function startPageServer() {
    const hits = [];
    const sockets = new Set();
    const server = http.createServer((req, res) => {
        hits.push({ url: req.url, userAgent: req.headers['user-agent'] || '' });
        const path = req.url.split('?')[0];
        const body = path === '/' ? PAGE : path === '/second.html' ? SECOND : null;
        if (body === null) {
            res.writeHead(404, { 'content-type': 'text/plain' });
            res.end('not found\n');
            return;
        }
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(body) });
        res.end(body);
    });
    server.on('connection', (s) => {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
    });
    await new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', resolve);
    });
    const port = server.address().port;
    return {
        port,
        url: `http://127.0.0.1:${port}/`,
        hits,
        close: async () => {
            for (const s of sockets) s.destroy();
            await new Promise((resolve) => server.close(() => resolve()));
        },
    };
}

/**
 * Every live process we can see: { pid, ppid, start (clock ticks since boot), argv }. Zombies are
 * left out: they have exited and hold nothing but their pid until reaped.
 */
export function processTable() {
    const out = [];
    for (const name of fs.readdirSync('/proc')) {
        if (!/^\d+$/.test(name)) continue;
        try {
            const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
            // the command name (field 2) is in parentheses and may hold spaces; the rest follows
            const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
            const argv = fs.readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').filter(Boolean);
            if (rest[0] === 'Z') continue;
            out.push({ pid: Number(name), ppid: Number(rest[1]), start: rest[19], argv });
        } catch {
            /* it exited while we looked */
        }
    }
    return out;
}

/** The process and all its descendants, from a processTable(). */
export function descendants(table, pid) {
    const found = new Map();
    const queue = [pid];
    while (queue.length) {
        const p = queue.shift();
        for (const e of table) {
            if (e.ppid === p && !found.has(e.pid)) {
                found.set(e.pid, e);
                queue.push(e.pid);
            }
        }
    }
    return [...found.values()];
}

/** Processes whose command line names the profile directory (chromium's --user-data-dir=DIR). */
export function profileProcesses(table, userDataDir) {
    return table.filter((e) => e.argv.some((a) => a === `--user-data-dir=${userDataDir}`));
}

/** Those of `procs` ({pid, start}) still alive: same pid and same start time (no pid reuse). */
export function stillAlive(procs) {
    const now = new Map(processTable().map((e) => [e.pid, e.start]));
    return procs.filter((p) => now.get(p.pid) === p.start);
}
