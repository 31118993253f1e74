// SPDX-License-Identifier: MIT
// The built-in web UI's fixes of issue 15 in chromium: a reload in the middle of an answer shows
// the whole answer exactly once (the partial bubble becomes the final message), sessions are named
// after their first query (first 50 characters, POST /sessions/update metadata.name, as the
// original does), and "Summarize" names a session with POST /sessions/generate-summary.
// Skips when chromium is not installed.

import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import { addScenarios, startFakeOpenAI } from './lib/fake-openai.mjs';
import { cleanup, q, startServer, test } from './lib/server.mjs';
import { listSessions } from './lib/v1-client.mjs';
import { SKIP_REASON, assertClean, currentSessionId, launchBrowser, openPage, sel, sendMessage, waitStatus } from './lib/ui-browser.mjs';
import { slowText } from './lib/ui-scenarios.mjs';

const T = { timeout: 60000 };
const TITLE = 'Ocean tides explained briefly';

// answers (and summarizes) with a JSON title, as a model asked for one would
addScenarios({
    uifix_title(s) {
        s.text(JSON.stringify({ title: TITLE }));
    },
});
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

    test('a session is named after its first query (50 characters), later queries keep the name', T, async () => {
        const [page, sid] = await freshSession();
        const first = q('text', 'please explain in detail how the tides of the ocean come about and why');
        await sendMessage(page, first);
        await waitStatus(page, 'Idle');
        const want = first.replace(/\s+/g, ' ').trim().slice(0, 50);
        await page.waitForFunction((w) => document.getElementById('session-title').textContent === w, want, { timeout: 10000 });
        const stored = (await listSessions(srv)).find((s) => s.id === sid);
        assert.equal(stored.metadata.name, want, 'stored with POST /sessions/update metadata.name');
        assert.equal(await page.locator(`#session-list li[data-session-id="${sid}"] .session-name`).textContent(), want);
        await sendMessage(page, q('text', 'a second question'));
        await waitStatus(page, 'Idle');
        assert.equal((await listSessions(srv)).find((s) => s.id === sid).metadata.name, want, 'the second query does not rename');
        const updates = page.problems.requests.filter((r) => r.method === 'POST' && r.path === '/api/v1/sessions/update');
        assert.equal(updates.length, 1);
        // after a reload the name is still there
        await page.reload();
        await page.waitForFunction((w) => document.getElementById('session-title').textContent === w, want);
        assertClean(assert, page);
        await page.closeAll();
    });

    test('Summarize names the session from POST /sessions/generate-summary', T, async () => {
        const [page, sid] = await freshSession();
        await sendMessage(page, q('uifix_title', 'tell me about tides'));
        await waitStatus(page, 'Idle');
        const summary = page.waitForResponse((r) => r.url().endsWith('/api/v1/sessions/generate-summary'));
        await page.click('#summarize');
        const res = await summary;
        assert.equal(res.status(), 200);
        const sent = JSON.parse(res.request().postData());
        assert.equal(sent.sessionId, sid);
        assert.deepEqual(sent.messages.map((m) => m.role), ['user', 'assistant']);
        await page.waitForFunction((t) => document.getElementById('session-title').textContent === t, TITLE, { timeout: 10000 });
        assert.equal((await listSessions(srv)).find((s) => s.id === sid).metadata.name, TITLE);
        assertClean(assert, page);
        await page.closeAll();
    });
});
