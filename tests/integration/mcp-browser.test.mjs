// SPDX-License-Identifier: MIT
// A browser for the agent: the binary starts @agent-infra/mcp-server-browser from the mcpServers
// of its --config, headless, on Debian's chromium through tests/fixtures/browser/
// chromium-headless.sh (the closed-network flags), and a scripted model browses a page served on
// 127.0.0.1. The page's text must come back in the tool results and reach the model, a
// screenshot as an image; other host names must not resolve; and no chromium process may outlive
// the server. Skipped where chromium or the npm package is not installed (.ci/run installs both).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe } from 'node:test';
import { startFakeOpenAI, toolFinalText } from './lib/fake-openai.mjs';
import { cleanup, contentString, createSession, ofType, startServer, streamQuery, tempDir, test, waitFor } from './lib/server.mjs';
import { mcpPids, requestsOf, toolMessages, toolMessageText, writeConfig } from './mcp-helpers.mjs';
import {
    MAGIC_WORD,
    PAGE_HEADING,
    PAGE_TITLE,
    addBrowseScenario,
    browseQuery,
    descendants,
    processTable,
    profileProcesses,
    startPageServer,
    stillAlive,
} from './lib/browser-helpers.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = path.join(ROOT, 'node_modules/.bin/mcp-server-browser');
const WRAPPER = path.join(ROOT, 'tests/fixtures/browser/chromium-headless.sh');
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_REAL = '/usr/lib/chromium/chromium'; // what the wrapper runs
const CLOSED_NET_RULE = '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1';

// Browser start takes a few seconds, more on a loaded machine; every wait below is bounded.
const RUN_TIMEOUT_MS = 60000;
const TEST_TIMEOUT_MS = 75000;

function skipReason() {
    const missing = [];
    if (!fs.existsSync(CHROMIUM) || !fs.existsSync(CHROMIUM_REAL)) {
        missing.push(`Debian's chromium (${CHROMIUM} and ${CHROMIUM_REAL}; apt-get install chromium)`);
    }
    if (!fs.existsSync(BIN)) missing.push(`the npm package @agent-infra/mcp-server-browser (${BIN}; run npm ci)`);
    return missing.length ? `browser test skipped, not installed: ${missing.join(' and ')}` : false;
}

addBrowseScenario();

describe('browser tools: @agent-infra/mcp-server-browser on Debian chromium, headless, offline', { skip: skipReason() }, () => {
    let fake;
    let srv;
    let page;
    let profile;

    before(async () => {
        fake = await startFakeOpenAI();
        page = await startPageServer();
        profile = fs.realpathSync(tempDir('tars-browser-profile-'));
        const config = writeConfig({
            mcpServers: {
                browser: {
                    command: BIN,
                    args: ['--headless', '--executable-path', WRAPPER, '--viewport-size', '1280,800', '--user-data-dir', profile],
                    timeout: 45,
                },
            },
        });
        srv = await startServer({ fake, args: ['--config', config] });
    });

    after(async () => {
        try {
            await cleanup(srv, fake, page);
        } finally {
            // a failed test must not leave its chromium to the rest of the suite: only the
            // processes of this test's own profile directory are killed, by pid
            for (const p of profileProcesses(processTable(), profile)) {
                try {
                    process.kill(p.pid, 'SIGKILL');
                } catch {
                    /* already gone */
                }
            }
        }
    });

    /** One conversation of `browse` steps: { calls, results, final, tools, query }. */
    async function browse(steps) {
        const sid = await createSession(srv);
        const query = browseQuery(steps);
        const out = await streamQuery(srv, sid, query, { timeoutMs: RUN_TIMEOUT_MS });
        assert.equal(out.status, 200, out.raw);
        assert.deepEqual(out.errors, []);
        const final = ofType(out.events, 'assistant_message').at(-1);
        return {
            query,
            calls: ofType(out.events, 'tool_call'),
            results: ofType(out.events, 'tool_result'),
            final: final && final.content,
            tools: toolMessages(fake, query),
        };
    }

    /** The live chromium processes of our profile: the browser and everything it started. */
    function chromiumTree() {
        const table = processTable();
        const roots = profileProcesses(table, profile);
        const all = new Map(roots.map((e) => [e.pid, e]));
        for (const r of roots) for (const d of descendants(table, r.pid)) all.set(d.pid, d);
        return [...all.values()];
    }

    test('navigate, markdown and clickable elements of a page on 127.0.0.1', { timeout: TEST_TIMEOUT_MS }, async () => {
        const r = await browse([
            ['browser_navigate', { url: page.url }],
            ['browser_get_markdown', {}],
            ['browser_get_clickable_elements', {}],
        ]);

        // the server's tools are offered under their own names, described as [browser] ...
        const req = requestsOf(fake, r.query)[0];
        const names = req.body.tools.map((t) => t.function.name);
        for (const n of ['browser_navigate', 'browser_get_markdown', 'browser_get_clickable_elements', 'browser_screenshot', 'browser_click']) {
            assert.ok(names.includes(n), `${n} in ${names}`);
        }
        const nav = req.body.tools.find((t) => t.function.name === 'browser_navigate');
        assert.match(nav.function.description, /^\[browser\] /);
        assert.ok(nav.function.parameters.properties.url, JSON.stringify(nav.function.parameters));

        assert.deepEqual(
            r.calls.map((c) => c.name),
            ['browser_navigate', 'browser_get_markdown', 'browser_get_clickable_elements'],
        );
        assert.equal(r.results.length, 3);
        for (const res of r.results) assert.equal(res.error, undefined, JSON.stringify(res));

        const navText = contentString(r.results[0].content);
        assert.ok(navText.startsWith(`Navigated to ${page.url}`), navText);
        assert.ok(navText.includes(MAGIC_WORD), navText);

        const md = contentString(r.results[1].content);
        assert.ok(md.includes(PAGE_TITLE), md);
        assert.ok(md.includes(`## ${PAGE_HEADING}`), md);
        assert.ok(md.includes(`**${MAGIC_WORD}**`), md);
        assert.ok(md.includes('[Second page](/second.html)'), md);

        const clickable = contentString(r.results[2].content);
        assert.ok(clickable.includes('[link href="/second.html"] <a>Second page</a>'), clickable);
        assert.match(clickable, /\[\d+\] \[text placeholder="type here" id="q"\] <input>/);
        assert.match(clickable, /\[\d+\] \[button id="go"\] <button>Go<\/button>/);

        // what the model got: the MCP content arrays, stringified as the original does
        assert.deepEqual(
            r.tools.map((t) => t.content),
            r.results.map((res) => toolMessageText(res.content)),
        );
        assert.equal(r.final, toolFinalText(r.tools[2].content));
        assert.ok(page.hits.some((h) => h.url === '/'), JSON.stringify(page.hits));
    });

    test('chromium runs through the wrapper: headless, with the closed-network flags', { timeout: TEST_TIMEOUT_MS }, async () => {
        // the browser may have been closed or never started: a navigate makes sure it runs
        const r = await browse([['browser_navigate', { url: `${page.url}second.html` }]]);
        assert.equal(r.results[0].error, undefined, JSON.stringify(r.results[0]));
        assert.match(contentString(r.results[0].content), /second page/);

        const browsers = profileProcesses(processTable(), profile).filter((e) => e.argv.every((a) => !a.startsWith('--type=')));
        assert.equal(browsers.length, 1, JSON.stringify(browsers.map((b) => b.argv.slice(0, 3))));
        const argv = browsers[0].argv;
        assert.equal(argv[0], CHROMIUM_REAL, 'the wrapper execs the real binary, not /usr/bin/chromium');
        assert.ok(argv.some((a) => a === '--headless' || a.startsWith('--headless=')), argv.join(' '));
        for (const f of [CLOSED_NET_RULE, '--disable-background-networking', '--disable-component-update', '--no-sandbox']) {
            assert.ok(argv.includes(f), `${f} in ${argv.join(' ')}`);
        }
        // none of the flags that /usr/bin/chromium would take from /etc/chromium.d
        assert.ok(!argv.includes('--enable-remote-extensions'), argv.join(' '));

        // it belongs to the MCP server the binary started
        const mcp = mcpPids(srv).browser;
        assert.ok(mcp && mcp.length >= 1, srv.stderr.slice(-2000));
        const tree = descendants(processTable(), mcp.at(-1));
        assert.ok(tree.some((e) => e.pid === browsers[0].pid), 'chromium is a descendant of the MCP server process');
    });

    test('browser_screenshot: a 1280x800 PNG of the page reaches the model as an image', { timeout: TEST_TIMEOUT_MS }, async () => {
        const r = await browse([
            ['browser_navigate', { url: page.url }],
            ['browser_screenshot', {}],
        ]);
        const res = r.results[1];
        assert.equal(res.error, undefined, JSON.stringify(res).slice(0, 500));
        const text = res.content.find((c) => c.type === 'text');
        const image = res.content.find((c) => c.type === 'image');
        assert.match(text.text, /taken at 1280x800/);
        assert.equal(image.mimeType, 'image/png');
        const png = Buffer.from(image.data, 'base64');
        assert.equal(png.subarray(0, 8).toString('hex'), '89504e470d0a1a0a');
        assert.deepEqual([png.readUInt32BE(16), png.readUInt32BE(20)], [1280, 800], 'IHDR width and height');

        // the model gets the JSON of the content in the tool message, the image in a user
        // message right after it (the original's native engine)
        const msgs = requestsOf(fake, r.query).at(-1).body.messages;
        const i = msgs.findLastIndex((m) => m.role === 'tool');
        assert.equal(msgs[i].content, JSON.stringify([text], null, 2));
        assert.equal(msgs[i + 1].role, 'user');
        assert.deepEqual(msgs[i + 1].content, [{ type: 'image_url', image_url: { url: `data:image/png;base64,${image.data}` } }]);
    });

    test('no host name but localhost resolves: the navigate fails at once', { timeout: TEST_TIMEOUT_MS }, async () => {
        const started = Date.now();
        const r = await browse([['browser_navigate', { url: 'http://tars-browser-test.example/' }]]);
        assert.equal(r.results.length, 1);
        assert.match(r.results[0].error || '', /ERR_NAME_NOT_RESOLVED/, JSON.stringify(r.results[0]));
        assert.equal(r.tools[0].content, r.results[0].content);
        assert.ok(Date.now() - started < 30000, `took ${Date.now() - started} ms`);
        assert.equal(r.final, toolFinalText(r.tools[0].content));
    });

    test('no chromium process is left after the server stops', { timeout: TEST_TIMEOUT_MS }, async () => {
        const tree = chromiumTree();
        assert.ok(tree.length >= 1, 'chromium runs before the stop');
        const mcp = (mcpPids(srv).browser || []).map((pid) => processTable().find((e) => e.pid === pid)).filter(Boolean);
        assert.ok(mcp.length >= 1, 'the MCP server runs before the stop');
        const watched = [...tree, ...mcp];

        await srv.stop();
        await waitFor(() => stillAlive(watched).length === 0 && profileProcesses(processTable(), profile).length === 0, {
            timeoutMs: 10000,
            what: 'the MCP server and its chromium to exit',
        }).catch((e) => {
            const left = [...stillAlive(watched), ...profileProcesses(processTable(), profile)];
            e.message += `\nstill running: ${JSON.stringify(left.map((p) => ({ pid: p.pid, argv: p.argv.slice(0, 2) })))}`;
            throw e;
        });
    });
});
