// SPDX-License-Identifier: MIT
// The web UI behind a reverse-proxy sub-path (--server.basePath /agents) in a real browser: the
// page derives every asset and API URL from where it is served, so the whole flow (sessions,
// streamed answer, tool cards, files, reload mid-run) works and nothing is requested outside the
// prefix. Skips when chromium is not installed.

import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import { FILE_CONTENT, startFakeOpenAI } from './lib/fake-openai.mjs';
import { cleanup, get, ofType, q, startServer, test } from './lib/server.mjs';
import { getEvents } from './lib/v1-client.mjs';
import { SKIP_REASON, assertClean, assistantTexts, currentSessionId, launchBrowser, openPage, sel, sendMessage, waitStatus } from './lib/ui-browser.mjs';
import { slowText } from './lib/ui-scenarios.mjs';

const T = { timeout: 60000 };
let fake;
let srv;
let browser;

/** Session routes through the prefix, for the v1-client helpers that take a server. */
const prefixed = () => ({ ...srv, url: `${srv.url}/agents` });

describe('web UI under --server.basePath /agents', { skip: SKIP_REASON }, () => {
    before(async () => {
        fake = await startFakeOpenAI();
        srv = await startServer({ fake, args: ['--server.basePath', '/agents'] });
        browser = await launchBrowser();
    });
    after(async () => {
        if (browser) await browser.close();
        await cleanup(srv, fake);
    });

    for (const entry of ['/agents/', '/agents']) {
        test(`opened at ${entry}: sessions, a tool run, files; every request under the prefix`, T, async () => {
            const page = await openPage(browser, srv.url + entry);
            assert.equal(await page.getAttribute('#app', 'data-base'), '/agents');
            await page.click(sel.newSession);
            await page.waitForFunction(() => location.hash.length > 1);
            const sid = await currentSessionId(page);
            await sendMessage(page, q('tool path=sub.txt', 'under a prefix'));
            await waitStatus(page, 'Idle');
            assert.equal((await page.$$(sel.tool)).length, 2);
            assert.match((await assistantTexts(page))[0], /^Done\./);
            await page.getByRole('button', { name: /^File sub\.txt/ }).click();
            await page.waitForFunction((c) => document.getElementById('file-content').textContent === c, FILE_CONTENT);
            const stored = await getEvents(prefixed(), sid);
            assert.equal(ofType(stored, 'tool_result').length, 2);
            const paths = page.problems.requests.map((r) => r.path);
            assert.ok(paths.length > 8);
            assert.deepEqual(paths.filter((p) => !p.startsWith('/agents')), [], 'nothing outside /agents');
            assert.ok(paths.some((p) => p.startsWith('/agents/api/v1/sessions/query/stream')));
            assertClean(assert, page);
            await page.closeAll();
        });
    }

    test('reload mid-run under the prefix resumes without duplicates', T, async () => {
        const page = await openPage(browser, `${srv.url}/agents/`);
        await page.click(sel.newSession);
        await page.waitForFunction(() => location.hash.length > 1);
        await sendMessage(page, '[[scenario:slow n=50 delay=40]] prefixed reload');
        await page.waitForFunction(() => /w5\b/.test(document.querySelector('#conversation .msg-assistant')?.textContent || ''));
        await page.reload();
        // The page shows Idle for a moment before the replay reaches agent_run_start: wait for
        // the finished answer itself, then for the indicator.
        await page.waitForFunction(
            (want) => [...document.querySelectorAll('#conversation .msg-assistant')].some((e) => e.textContent === want),
            slowText(50),
            { timeout: 15000 },
        );
        await waitStatus(page, 'Idle');
        assert.deepEqual(await assistantTexts(page), [slowText(50)]);
        assert.equal((await page.$$(sel.user)).length, 1);
        assert.ok(page.problems.requests.some((r) => r.path.startsWith('/agents/api/v1/sessions/events/stream?')));
        assert.equal((await get(srv, '/api/v1/sessions')).status, 404, 'the API is not at the root');
        assertClean(assert, page);
        await page.closeAll();
    });
});
