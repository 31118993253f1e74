// SPDX-License-Identifier: MIT
// Governed runs in the embedded web UI (Debian's chromium via playwright-core): a tool call that
// needs approval shows Approve / Deny on its card; Approve runs it, Deny (with a reason) does
// not; the tokens of every answer and of the session are shown.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe } from 'node:test';
import { startFakeOpenAI } from './lib/fake-openai.mjs';
import { cleanup, ofType, startServer, test } from './lib/server.mjs';
import { addToolScenarios, toolQuery } from './lib/tools-scenarios.mjs';
import { SKIP_REASON, assertClean, currentSessionId, launchBrowser, openPage, sel, sendMessage, waitStatus } from './lib/ui-browser.mjs';
import { getEvents } from './lib/v1-client.mjs';

addToolScenarios();
const T = { timeout: 60000 };

describe('approvals and usage in the web UI', { skip: SKIP_REASON }, () => {
    let fake, srv, browser;
    before(async () => {
        fake = await startFakeOpenAI();
        srv = await startServer({ fake, args: ['--tools.approval.write_file', 'ask'] });
        browser = await launchBrowser();
    });
    after(async () => {
        if (browser) await browser.close();
        await cleanup(srv, fake);
    });

    async function freshSession() {
        const page = await openPage(browser, `${srv.url}/`);
        await page.click(sel.newSession);
        await page.waitForFunction(() => location.hash.length > 1);
        return [page, await currentSessionId(page)];
    }

    test('Approve runs the tool; the answer and the session show their tokens', T, async () => {
        const [page, sid] = await freshSession();
        await sendMessage(page, toolQuery([['write_file', { path: 'ui-approved.txt', content: 'ok' }]]));
        const card = page.locator('.tool-card.awaiting');
        await card.waitFor({ timeout: 15000 });
        assert.match(await card.locator('.tool-state').textContent(), /awaiting approval/);
        assert.ok(!fs.existsSync(path.join(srv.workspace, 'ui-approved.txt')));
        await card.getByRole('button', { name: 'Approve' }).click();
        await waitStatus(page, 'Idle');
        assert.equal(fs.readFileSync(path.join(srv.workspace, 'ui-approved.txt'), 'utf8'), 'ok');
        const done = page.locator('.tool-card').first();
        assert.equal(await done.locator('.approval').count(), 0, 'the buttons are gone');
        assert.match(await done.textContent(), /approved \(api\)/);
        // two model calls of 59 tokens each (the fake's usage)
        const usages = await page.$$eval('#conversation .usage', (els) => els.map((e) => e.textContent));
        assert.ok(usages.length >= 1 && usages.every((u) => u === '59 tokens (42 in, 17 out)'), JSON.stringify(usages));
        await page.waitForFunction(() => document.getElementById('session-usage').textContent === '118 tokens (84 in, 34 out)');
        const stored = await getEvents(srv, sid);
        assert.equal(ofType(stored, 'tool_approval_result')[0].approved, true);
        assertClean(assert, page);
        await page.closeAll();
    });

    test('Deny with a reason: the tool does not run and the card says why', T, async () => {
        const [page, sid] = await freshSession();
        await sendMessage(page, toolQuery([['write_file', { path: 'ui-denied.txt', content: 'no' }]]));
        const card = page.locator('.tool-card.awaiting');
        await card.waitFor({ timeout: 15000 });
        await card.getByRole('textbox', { name: 'Reason' }).fill('not in this folder');
        await card.getByRole('button', { name: 'Deny' }).click();
        await waitStatus(page, 'Idle');
        assert.ok(!fs.existsSync(path.join(srv.workspace, 'ui-denied.txt')));
        const text = await page.locator('.tool-card').first().textContent();
        assert.match(text, /denied: not in this folder \(api\)/);
        assert.match(text, /denied by the user: not in this folder/);
        const stored = await getEvents(srv, sid);
        assert.deepEqual([ofType(stored, 'tool_approval_result')[0].approved, ofType(stored, 'tool_approval_result')[0].reason], [false, 'not in this folder']);
        // a reload shows the decided card without buttons
        await page.reload();
        await page.locator('.tool-card').first().waitFor();
        assert.equal(await page.locator('.approval').count(), 0);
        assertClean(assert, page);
        await page.closeAll();
    });
});
