// SPDX-License-Identifier: MIT
// The built-in web UI's fixes of issue 15 in chromium: a reload in the middle of an answer shows
// the whole answer exactly once (the partial bubble becomes the final message), sessions are named
// after their first query (first 50 characters, POST /sessions/update metadata.name, as the
// original does), and "Summarize" names a session with POST /sessions/generate-summary.
// Skips when chromium is not installed.

import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import { startFakeOpenAI } from './lib/fake-openai.mjs';
import { cleanup, q, startServer, test } from './lib/server.mjs';
import { listSessions } from './lib/v1-client.mjs';
import { SKIP_REASON, assertClean, currentSessionId, launchBrowser, openPage, sel, sendMessage, waitStatus } from './lib/ui-browser.mjs';
import { slowText } from './lib/ui-scenarios.mjs';

const T = { timeout: 60000 };
let fake;
let srv;
let browser;

async function freshSession() {
    const page = await openPage(browser, `${srv.url}/`);
    await page.click(sel.newSession);
    await page.waitForFunction(() => location.hash.length > 1);
    return [page, await currentSessionId(page)];
}

const convText = (page) => page.evaluate(() => document.getElementById('conversation').innerText);
const count = (hay, needle) => hay.split(needle).length - 1;

describe('web UI fixes in chromium', { skip: SKIP_REASON }, () => {
    before(async () => {
        fake = await startFakeOpenAI();
        srv = await startServer({ fake });
        browser = await launchBrowser();
    });
    after(async () => {
        if (browser) await browser.close();
        await cleanup(srv, fake);
    });

    test('reload in the middle of an answer: the whole answer once, no leftover partial bubble', T, async () => {
        const [page, sid] = await freshSession();
        const answer = slowText(30);
        const t0 = Date.now();
        await sendMessage(page, q('slow n=30 delay=30', 'thirty tokens please'));
        // the answer has started streaming: reload about a second into it
        await page.waitForFunction(() => /\bw2\b/.test(document.getElementById('conversation').innerText), null, { timeout: 15000 });
        const streamedFor = Date.now() - t0;
        await page.reload();
        await page.waitForFunction((s) => location.hash === `#${s}`, sid);
        await page.waitForFunction((a) => document.getElementById('conversation').innerText.includes(a), answer, { timeout: 15000 });
        await waitStatus(page, 'Idle');
        await page.waitForTimeout(300); // any late render would show now
        const text = await convText(page);
        assert.equal(count(text, 'w0 w1 w2'), 1, `the answer's beginning once (reloaded after ${streamedFor} ms): ${JSON.stringify(text)}`);
        assert.equal(count(text, 'w29'), 1, 'its end once');
        const bubbles = await page.$$eval(sel.assistant, (els) => els.map((e) => ({ text: e.innerText, streaming: e.classList.contains('streaming') })));
        assert.equal(bubbles.length, 1, JSON.stringify(bubbles));
        assert.equal(bubbles[0].streaming, false);
        assertClean(assert, page);
        await page.closeAll();
    });
});
