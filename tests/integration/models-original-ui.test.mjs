// SPDX-License-Identifier: MIT
// Issue 18: the ORIGINAL web UI's model picker (@tarko/agent-ui-builder 0.3.0, same origin
// through lib/original-ui-proxy.mjs) against the binary in chromium: it lists GET /api/v1/models,
// picking "Model B" posts POST /api/v1/sessions/model, the next answer comes from model B's
// server with its key, and after a reload the picker shows Model B. Skips without chromium or
// without the npm package.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe } from 'node:test';
import { startFakeOpenAI, textReply } from './lib/fake-openai.mjs';
import { HAVE_ORIGINAL_UI, ORIGINAL_UI_DIR, startOriginalUi } from './lib/original-ui-proxy.mjs';
import { cleanup, get, q, startServer, tempDir, test } from './lib/server.mjs';
import { SKIP_REASON, launchBrowser, openPage, saveDir } from './lib/ui-browser.mjs';

const SKIP = SKIP_REASON || (HAVE_ORIGINAL_UI ? false : `${ORIGINAL_UI_DIR}/index.html is missing (npm ci installs @tarko/agent-ui-builder)`);
const WAIT = { timeout: 20000 };
const KEY_B = 'sk-fake-ORIG-UI-B-5d2c';

const waitText = (page, text) => page.waitForFunction((t) => document.body.innerText.includes(t), text, WAIT);

describe('the original web UI model picker (chromium)', { skip: SKIP }, () => {
    let fakeA;
    let fakeB;
    let srv;
    let ui;
    let browser;
    before(async () => {
        fakeA = await startFakeOpenAI();
        fakeB = await startFakeOpenAI();
        const file = path.join(tempDir('tars-models-orig-'), 'models.json');
        fs.writeFileSync(
            file,
            JSON.stringify({ server: { models: [{ provider: 'openai-compatible', id: 'model-b', displayName: 'Model B', baseURL: fakeB.baseURL, apiKey: KEY_B }] } }),
        );
        srv = await startServer({ fake: fakeA, args: ['--config', file] });
        ui = await startOriginalUi(srv);
        browser = await launchBrowser();
    });
    after(async () => {
        if (browser) await browser.close();
        if (ui) await ui.close();
        await cleanup(srv, fakeA, fakeB);
    });

    test('pick Model B in the original picker: the next answer comes from B, the choice stays after a reload', { timeout: 90000 }, async () => {
        const page = await openPage(browser, `${ui.origin}/`);
        await page.locator('textarea').waitFor(WAIT);
        // An answer that takes a moment: the page's own running state must see the run start
        // before it ends (an instant answer can leave this UI showing "running").
        const first = q('slow n=6 delay=80', 'first, on the default model');
        await page.locator('textarea').fill(first);
        await page.locator('form button[type=submit]:not([disabled])').click(WAIT);
        await page.waitForURL(/\/[A-Za-z0-9_-]{21}$/, WAIT);
        const sid = new URL(page.url()).pathname.slice(1);
        await waitText(page, 'w0 w1 w2 w3 w4 w5');
        assert.equal(fakeA.requestsMatching(first).length, 1);

        // the picker shows the session's model (a button once the run is over); its menu lists
        // the catalogue
        const picker = page.locator('button:visible:has-text("fake-model")');
        try {
            await picker.first().click(WAIT);
        } catch (e) {
            await page.screenshot({ path: path.join(saveDir(), 'original-ui-picker-missing.png') });
            throw e;
        }
        const options = await page.locator('[role=option]').allTextContents();
        assert.deepEqual(options, ['fake-model•openai-compatible', 'Model B•openai-compatible']);
        const saved = page.waitForResponse((r) => r.url().endsWith('/api/v1/sessions/model'), WAIT);
        await page.locator('[role=option]:has-text("Model B")').click(WAIT);
        assert.equal((await saved).status(), 200);
        const posted = JSON.parse(ui.requests.find((r) => r.path === '/api/v1/sessions/model').body);
        assert.deepEqual(posted, { sessionId: sid, model: { id: 'model-b', provider: 'openai-compatible', displayName: 'Model B' } });

        const second = q('text', 'second, on model B');
        const form = page.locator('form:has(textarea:visible)');
        await form.locator('textarea').fill(second);
        await form.locator('button[type=submit]:not([disabled])').click(WAIT);
        await waitText(page, textReply(second));
        assert.equal(fakeA.requestsMatching(second).length, 0);
        const rec = fakeB.requestsMatching(second)[0];
        assert.equal(rec.body.model, 'model-b');
        assert.equal(rec.headers.authorization, `Bearer ${KEY_B}`);

        await page.reload();
        await waitText(page, textReply(second));
        await page.locator('button:has-text("Model B")').first().waitFor(WAIT);
        const details = await get(srv, `/api/v1/sessions/details?sessionId=${sid}`);
        assert.equal(details.json.session.metadata.modelConfig.id, 'model-b');
        for (const r of ui.requests) assert.ok(r.status === null || r.status < 400, `${r.method} ${r.path} -> ${r.status}`);
        assert.deepEqual(page.problems.pageErrors, []);
        await page.context().close();
    });
});
