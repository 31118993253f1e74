// SPDX-License-Identifier: MIT
// The built-in web UI end to end in a real browser (Debian chromium + playwright-core) against
// the binary and the fake model: sessions, streaming Markdown answers, tool cards, stop, reload in
// the middle of a run, safe rendering of hostile output, keyboard and screen-reader basics,
// narrow windows and both themes. Skips when chromium is not installed.

import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe } from 'node:test';
import { FILE_CONTENT, REASONING_TEXT, REASONING_ANSWER, startFakeOpenAI, textReply } from './lib/fake-openai.mjs';
import { cleanup, ofType, q, startServer, test } from './lib/server.mjs';
import { getEvents, listSessions } from './lib/v1-client.mjs';
import {
    SKIP_REASON,
    assertClean,
    assistantTexts,
    currentSessionId,
    launchBrowser,
    openPage,
    saveDir,
    sel,
    sendMessage,
    waitStatus,
} from './lib/ui-browser.mjs';
import { XSS_FILE, slowText } from './lib/ui-scenarios.mjs';

const T = { timeout: 60000 };
let fake;
let srv;
let browser;

/** Opens the UI, creates a session with the button, and returns [page, sessionId]. */
async function freshSession(opts) {
    const page = await openPage(browser, `${srv.url}/`, opts);
    await page.click(sel.newSession);
    await page.waitForFunction(() => location.hash.length > 1);
    const sid = await currentSessionId(page);
    await page.waitForSelector(`#session-list li[data-session-id="${sid}"] [aria-current="true"]`);
    return [page, sid];
}

describe('web UI in chromium', { skip: SKIP_REASON }, () => {
    before(async () => {
        fake = await startFakeOpenAI();
        srv = await startServer({ fake });
        browser = await launchBrowser();
    });
    after(async () => {
        if (browser) await browser.close();
        await cleanup(srv, fake);
    });

    test('create a session, send with Enter, the answer streams in pieces and completes', T, async () => {
        const [page, sid] = await freshSession();
        const query = '[[scenario:slow n=30 delay=40]] stream please';
        await sendMessage(page, query);
        await waitStatus(page, 'Running');
        assert.equal(await page.inputValue(sel.input), '', 'the composer is cleared');
        assert.equal(await page.isVisible(sel.stop), true, 'Stop is offered while running');
        assert.equal(await page.isDisabled(sel.send), true, 'Send is disabled while running');
        const seen = new Set();
        for (;;) {
            const [text] = await assistantTexts(page);
            if (text) seen.add(text);
            if ((await page.textContent(sel.statusText)) === 'Idle') break;
            await page.waitForTimeout(40);
        }
        const final = slowText(30);
        const [text] = await assistantTexts(page);
        assert.equal(text, final);
        const partial = [...seen].filter((t) => t.length < final.length && final.startsWith(t.replace(/▍$/, '')));
        assert.ok(partial.length >= 3, `saw the answer grow in pieces (${partial.length} partial states)`);
        assert.deepEqual(await page.$$eval(sel.user, (els) => els.map((e) => e.textContent)), [query]);
        assert.equal(await page.isHidden(sel.stop), true);
        // the answer went to the aria-live region too
        assert.equal(await page.getAttribute('#live', 'aria-live'), 'polite');
        assert.match(await page.textContent('#live'), /w0 w1 .*w29/);
        // the session is listed, and the stored events agree with the page
        const stored = await getEvents(srv, sid);
        assert.equal(ofType(stored, 'agent_run_end')[0].status, 'idle');
        await page.screenshot({ path: path.join(saveDir(), 'ui-streamed.png') });
        assertClean(assert, page);
        await page.closeAll();
    });

    test('a query with tool calls shows one card per call, and the workspace panel shows the file', T, async () => {
        const [page, sid] = await freshSession();
        await sendMessage(page, q('tool path=ui-hello.txt', 'write and read'));
        await waitStatus(page, 'Idle');
        const cards = await page.$$eval(sel.tool, (els) =>
            els.map((e) => ({
                name: e.querySelector('.tool-name').textContent,
                state: e.querySelector('.tool-state').textContent,
                args: e.querySelector('.tool-args pre').textContent,
                result: e.querySelector('.tool-result pre').textContent,
                time: e.querySelector('.tool-time').textContent,
                label: e.getAttribute('aria-label'),
            })),
        );
        assert.equal(cards.length, 2, JSON.stringify(cards));
        assert.deepEqual(cards.map((c) => c.name), ['write_file', 'read_file']);
        for (const c of cards) {
            assert.equal(c.state, 'done');
            assert.match(c.args, /"path": "[^"]*ui-hello\.txt"/);
            assert.match(c.time, /^\d+(\.\d+)? (ms|s)$/);
            assert.equal(c.label, `Tool call ${c.name}`);
        }
        assert.ok(cards[1].result.includes('hello from fake'), cards[1].result);
        const stored = await getEvents(srv, sid);
        assert.equal(ofType(stored, 'tool_call').length, 2);
        const [answer] = await assistantTexts(page);
        assert.match(answer, /^Done\. The last tool said:/);
        // workspace panel (open by default in a wide window): list, then view the file
        const file = page.getByRole('button', { name: /^File ui-hello\.txt/ });
        await file.waitFor();
        await file.click();
        await page.waitForFunction((c) => document.getElementById('file-content').textContent === c, FILE_CONTENT);
        assert.match(await page.textContent('#file-meta'), /\d+ B/);
        await page.screenshot({ path: path.join(saveDir(), 'ui-main.png') });
        await page.keyboard.press('Escape');
        assert.equal(await page.isHidden('#file-viewer'), true, 'Escape closes the viewer');
        assertClean(assert, page);
        await page.closeAll();
    });

    test('Stop aborts a slow answer: status Stopped, partial text, run stored as aborted', T, async () => {
        const [page, sid] = await freshSession();
        await sendMessage(page, '[[scenario:slow n=300 delay=50]] a long answer');
        await page.waitForFunction(() => /w5\b/.test(document.querySelector('#conversation .msg-assistant')?.textContent || ''));
        await page.getByRole('button', { name: 'Stop' }).click();
        await waitStatus(page, 'Stopped');
        const stored = await getEvents(srv, sid);
        assert.equal(ofType(stored, 'agent_run_end').at(-1).status, 'aborted');
        const texts = await assistantTexts(page);
        assert.ok(!texts.some((t) => t.includes('w299')), 'the answer was cut short');
        assert.ok(await page.isVisible('#conversation .notice-warning'), 'the abort warning is shown');
        assert.equal(await page.isEnabled(sel.send), true);
        // the session takes a new query afterwards
        await sendMessage(page, q('text', 'after stop'));
        await waitStatus(page, 'Idle');
        assert.equal((await page.$$(sel.user)).length, 2);
        assertClean(assert, page);
        await page.closeAll();
    });

    test('reload in the middle of a run: the page resumes the stream and shows every event once', T, async () => {
        const [page, sid] = await freshSession();
        const query = '[[scenario:ui_toolslow n=60 delay=50]] reload me';
        await sendMessage(page, query);
        await page.waitForFunction(() => /w8\b/.test(document.querySelector('#conversation .msg-assistant')?.textContent || ''));
        assert.equal(await page.textContent(sel.statusText), 'Running');
        await page.reload();
        assert.equal(await currentSessionId(page), sid, 'the session is kept in the URL');
        await page.waitForFunction(() => document.getElementById('status-text').textContent === 'Running', null, { timeout: 5000 });
        await waitStatus(page, 'Idle');
        const stored = await getEvents(srv, sid);
        assert.ok(!ofType(stored, 'agent_run_end').some((e) => e.timestamp < 0));
        assert.deepEqual(await page.$$eval(sel.user, (els) => els.map((e) => e.textContent)), [query]);
        assert.equal((await page.$$(sel.tool)).length, ofType(stored, 'tool_call').length);
        assert.equal((await page.$$(sel.tool)).length, 1);
        assert.deepEqual(await assistantTexts(page), [slowText(60)], 'one answer, complete, once');
        const reqs = page.problems.requests.filter((r) => r.path.includes('/events/stream'));
        assert.ok(reqs.some((r) => r.path.includes(`sessionId=${sid}`)), 'resumed via GET events/stream');
        // after the run, nothing streams twice: the stored log and the page agree
        const assistantEvents = ofType(stored, 'assistant_message').filter((e) => e.content);
        assert.equal(assistantEvents.length, (await assistantTexts(page)).length);
        assertClean(assert, page, { allowConsole: [/ERR_ABORTED|network error|Failed to fetch/i] });
        await page.closeAll();
    });

    test('a dropped connection mid-run resumes from the last id seen', T, async () => {
        const [page, sid] = await freshSession();
        await sendMessage(page, '[[scenario:ui_toolslow n=60 delay=50]] drop me');
        await page.waitForFunction(() => /w5\b/.test(document.querySelector('#conversation .msg-assistant')?.textContent || ''));
        // cut the POST stream from the page's side: the page must resume with GET ...&after=<last id>
        await page.evaluate(() => window.tarsUi.dropStream());
        await waitStatus(page, 'Idle');
        const resumed = page.problems.requests.filter((r) => /\/events\/stream\?.*after=[1-9]/.test(r.path));
        assert.ok(resumed.length >= 1, JSON.stringify(page.problems.requests.map((r) => r.path)));
        const stored = await getEvents(srv, sid);
        assert.equal((await page.$$(sel.tool)).length, ofType(stored, 'tool_call').length);
        assert.equal((await page.$$(sel.user)).length, 1);
        const texts = await assistantTexts(page);
        assert.equal(texts.length, 1);
        assert.equal(texts[0], slowText(60));
        assertClean(assert, page);
        await page.closeAll();
    });

    test('switch between sessions; the list is newest first', T, async () => {
        const [page, a] = await freshSession();
        const qa = q('text', 'alpha question');
        await sendMessage(page, qa);
        await waitStatus(page, 'Idle');
        await page.click(sel.newSession);
        await page.waitForFunction((id) => location.hash.length > 1 && location.hash.slice(1) !== id, a);
        const b = await currentSessionId(page);
        assert.equal((await page.$$(sel.user)).length, 0, 'a new session starts empty');
        const qb = q('text', 'beta question');
        await sendMessage(page, qb);
        await waitStatus(page, 'Idle');
        const order = await page.$$eval(sel.sessions, (els) => els.map((e) => e.dataset.sessionId));
        assert.ok(order.indexOf(b) < order.indexOf(a), 'newest first');
        // switch with the keyboard
        await page.focus(`#session-list li[data-session-id="${a}"] .session-open`);
        await page.keyboard.press('Enter');
        await page.waitForFunction((id) => location.hash.slice(1) === id, a);
        await page.waitForFunction(() => document.querySelectorAll('#conversation .msg-assistant').length === 1);
        assert.deepEqual(await assistantTexts(page), [textReply(qa)]);
        assert.equal(await page.getAttribute(`#session-list li[data-session-id="${a}"] .session-open`, 'aria-current'), 'true');
        await page.click(`#session-list li[data-session-id="${b}"] .session-open`);
        await page.waitForFunction((t) => document.querySelector('#conversation .msg-assistant')?.textContent === t, textReply(qb));
        assert.deepEqual(await page.$$eval(sel.user, (els) => els.map((e) => e.textContent)), [qb]);
        assertClean(assert, page);
        await page.closeAll();
    });

    test('rename and delete a session from the sidebar', T, async () => {
        const [page, sid] = await freshSession();
        const item = `#session-list li[data-session-id="${sid}"]`;
        await page.getByRole('button', { name: 'Rename session Untitled session' }).first().click();
        const input = page.getByRole('textbox', { name: 'New session name' });
        await input.fill('Quarterly numbers');
        await input.press('Enter');
        await page.waitForFunction((s) => document.querySelector(`${s} .session-name`)?.textContent === 'Quarterly numbers', item);
        let listed = (await listSessions(srv)).find((s) => s.id === sid);
        assert.equal(listed.metadata.name, 'Quarterly numbers');
        assert.equal(await page.textContent('#session-title'), 'Quarterly numbers');
        // Escape cancels a rename
        await page.getByRole('button', { name: 'Rename session Quarterly numbers' }).click();
        await page.getByRole('textbox', { name: 'New session name' }).fill('nope');
        await page.keyboard.press('Escape');
        await page.waitForSelector(`${item} .session-name`);
        assert.equal(await page.textContent(`${item} .session-name`), 'Quarterly numbers');
        // delete (the confirm() is accepted by the helper)
        await page.getByRole('button', { name: 'Delete session Quarterly numbers' }).click();
        await page.waitForSelector(item, { state: 'detached' });
        assert.equal(page.problems.dialogs.length, 1);
        assert.equal(page.problems.dialogs[0].type, 'confirm');
        listed = (await listSessions(srv)).find((s) => s.id === sid);
        assert.equal(listed, undefined, 'gone from the server');
        assert.equal(await currentSessionId(page), '');
        // a workspace refresh already on its way when the session was deleted may get a 404
        assertClean(assert, page, { allowHttp: [new RegExp(`^404 GET /api/v1/sessions/workspace/files\\?sessionId=${sid}&`)] });
        await page.closeAll();
    });

    test('hostile HTML in answers, tool results, files and names is shown as text and runs nothing', T, async () => {
        const [page, sid] = await freshSession();
        await sendMessage(page, q('ui_xss', 'be evil'));
        await waitStatus(page, 'Idle');
        const check = () =>
            page.evaluate(() => ({
                pwned: window.__pwned,
                live: document.querySelectorAll('#app img, #app script, #app svg, #app iframe, #app object, #app b').length,
                jsLinks: document.querySelectorAll('a[href^="javascript:" i]').length,
                text: document.getElementById('conversation').textContent,
            }));
        let r = await check();
        assert.equal(r.pwned, undefined);
        assert.equal(r.live, 0, 'no element was created from model or tool text');
        assert.equal(r.jsLinks, 0);
        assert.ok(r.text.includes('<img src=x onerror="window.__pwned=\'img\'">'), 'the answer shows the tag as text');
        assert.ok(r.text.includes('<script>window.__pwned = "script"</script>'));
        assert.ok(r.text.includes('click me'));
        const results = await page.$$eval('#conversation .tool-result pre', (els) => els.map((e) => e.textContent));
        assert.ok(results.some((t) => t.includes(XSS_FILE)), 'the tool result shows the file text');
        // the file viewer
        await page.getByRole('button', { name: /^File evil\.html/ }).click();
        await page.waitForFunction((c) => document.getElementById('file-content').textContent === c, XSS_FILE);
        // a session name
        await page.getByRole('button', { name: /^Rename session / }).first().click();
        await page.getByRole('textbox', { name: 'New session name' }).fill('<img src=x onerror="window.__pwned=\'name\'">');
        await page.keyboard.press('Enter');
        await page.waitForFunction((id) => document.querySelector(`#session-list li[data-session-id="${id}"] .session-name`)?.textContent.startsWith('<img'), sid);
        await page.reload();
        await waitStatus(page, 'Idle');
        await page.waitForSelector(sel.tool);
        r = await check();
        assert.equal(r.pwned, undefined);
        assert.equal(r.live, 0);
        assert.equal(page.problems.dialogs.length, 0, 'no alert or other dialog');
        assertClean(assert, page);
        await page.closeAll();
    });

    test('Markdown: headings, lists, code blocks, tables, links', T, async () => {
        const [page] = await freshSession();
        await sendMessage(page, q('ui_md', 'markdown'));
        await waitStatus(page, 'Idle');
        const md = await page.evaluate(() => {
            const m = document.querySelector('#conversation .msg-assistant .md');
            const t = (s) => [...m.querySelectorAll(s)].map((e) => e.textContent);
            const a = m.querySelector('a');
            return {
                h1: t('h1'),
                h2: t('h2'),
                strong: t('strong'),
                em: t('em'),
                code: t('p code'),
                link: a && { href: a.getAttribute('href'), rel: a.rel, target: a.target, text: a.textContent },
                ul: t(':scope > ul > li').length,
                nested: t('ul ul li'),
                ol: t('ol li'),
                pre: t('pre code'),
                lang: m.querySelector('pre code')?.dataset.lang,
                th: t('th'),
                td: t('td'),
                align: m.querySelector('td:nth-child(2)')?.style.textAlign,
                quote: t('blockquote'),
            };
        });
        assert.deepEqual(md.h1, ['Report title']);
        assert.deepEqual(md.h2, ['Steps']);
        assert.deepEqual(md.strong, ['bold']);
        assert.deepEqual(md.em, ['italic']);
        assert.deepEqual(md.code, ['inline code']);
        assert.deepEqual(md.link, { href: 'https://example.com/docs', rel: 'noopener noreferrer nofollow', target: '_blank', text: 'link' });
        assert.equal(md.ul, 2);
        assert.deepEqual(md.nested, ['nested item']);
        assert.deepEqual(md.ol, ['one', 'two']);
        assert.deepEqual(md.pre, ['const x = 1 < 2 && "<b>not bold</b>";']);
        assert.equal(md.lang, 'js');
        assert.deepEqual(md.th, ['Name', 'Value']);
        assert.deepEqual(md.td, ['alpha', '1', 'beta', '2']);
        assert.equal(md.align, 'right');
        assert.deepEqual(md.quote, ['a quote']);
        assertClean(assert, page);
        await page.closeAll();
    });

    test('the Markdown renderer on edge cases: no HTML, only http(s)/mailto links', T, async () => {
        const page = await openPage(browser, `${srv.url}/`);
        const A = (href, text) => `<a href="${href}" target="_blank" rel="noopener noreferrer nofollow">${text}</a>`;
        const cases = [
            ['<b>hi</b> <img src=x onerror=alert(1)>', '<p>&lt;b&gt;hi&lt;/b&gt; &lt;img src=x onerror=alert(1)&gt;</p>'],
            ['[x](javascript:alert(1)) [y](data:text/html,hi) [z](vbscript:x)', '<p>x y z</p>'],
            ['[x](https://a.b/c?d=1&e=2)', `<p>${A('https://a.b/c?d=1&amp;e=2', 'x')}</p>`],
            ['[mail](mailto:a@b.c)', `<p>${A('mailto:a@b.c', 'mail')}</p>`],
            ['see https://example.com/a.', `<p>see ${A('https://example.com/a', 'https://example.com/a')}.</p>`],
            ['<https://auto.link/x>', `<p>${A('https://auto.link/x', 'https://auto.link/x')}</p>`],
            ['```\nunterminated <i>', '<pre><code>unterminated &lt;i&gt;</code></pre>'],
            ['`a<b`', '<p><code>a&lt;b</code></p>'],
            ['snake_case_name', '<p>snake_case_name</p>'],
            ['**unclosed bold', '<p>**unclosed bold</p>'],
            ['a\\*b\\*', '<p>a*b*</p>'],
            ['*em* _em_ ***both*** ~~gone~~', '<p><em>em</em> <em>em</em> <strong><em>both</em></strong> <del>gone</del></p>'],
            ['### h3 ###', '<h3>h3</h3>'],
            ['---', '<hr>'],
            ['line1\nline2', '<p>line1<br>line2</p>'],
            ['text\n# heading', '<p>text</p><h1>heading</h1>'],
            ['1. a\n\n   para\n2. b', '<ol><li><p>a</p><p>para</p></li><li>b</li></ol>'],
            ['3. c\n4. d', '<ol start="3"><li>c</li><li>d</li></ol>'],
            ['- [x] done', '<ul><li><input type="checkbox" disabled="" aria-label="done"> done</li></ul>'],
            ['> q\n> - item', '<blockquote><p>q</p><ul><li>item</li></ul></blockquote>'],
            [
                '| a | b |\n|---|---|\n| 1 | 2 | 3 |\n| <i>x</i>',
                '<div class="md-table"><table><thead><tr><th scope="col">a</th><th scope="col">b</th></tr></thead>' +
                    '<tbody><tr><td>1</td><td>2</td></tr><tr><td>&lt;i&gt;x&lt;/i&gt;</td><td></td></tr></tbody></table></div>',
            ],
            ['    code <b>\n    more', '<pre><code>code &lt;b&gt;\nmore</code></pre>'],
        ];
        const out = await page.evaluate(async (inputs) => {
            const { renderBlocks } = await import(new URL('markdown.js', document.baseURI).href);
            return inputs.map((src) => {
                const d = document.createElement('div');
                d.append(renderBlocks(src));
                return d.innerHTML; // read back only, to compare the structure built
            });
        }, cases.map((c) => c[0]));
        cases.forEach(([src, want], i) => assert.equal(out[i], want, JSON.stringify(src)));
        assertClean(assert, page);
        await page.closeAll();
    });

    test('thinking is collapsible; a model error is shown as an error', T, async () => {
        const [page] = await freshSession();
        await sendMessage(page, q('reasoning', 'think'));
        await waitStatus(page, 'Idle');
        const think = page.locator('#conversation details.thinking');
        assert.equal(await think.count(), 1);
        assert.equal(await think.evaluate((d) => d.open), false, 'collapsed by default');
        await think.locator('summary').click();
        assert.equal(await think.evaluate((d) => d.open), true);
        assert.equal(await think.locator('.thinking-body').textContent(), REASONING_TEXT);
        assert.deepEqual(await assistantTexts(page), [REASONING_ANSWER]);
        await sendMessage(page, q('err500', 'fail'));
        await waitStatus(page, 'Error');
        const err = page.locator(sel.error).last();
        assert.equal(await err.getAttribute('role'), 'alert');
        assert.match(await err.textContent(), /^Error: /);
        assert.equal(await page.getAttribute(sel.status, 'data-state'), 'error');
        assertClean(assert, page);
        await page.closeAll();
    });

    test('keyboard and screen readers: Shift+Enter adds a line, every control is named and reachable', T, async () => {
        const [page] = await freshSession();
        await page.focus(sel.input);
        await page.keyboard.type('line one');
        await page.keyboard.press('Shift+Enter');
        await page.keyboard.type('line two');
        assert.equal(await page.inputValue(sel.input), 'line one\nline two');
        assert.equal((await page.$$(sel.user)).length, 0, 'Shift+Enter did not send');
        await page.keyboard.press('Enter');
        await waitStatus(page, 'Idle');
        assert.equal(await page.textContent(sel.user), 'line one\nline two');
        // accessible names on every control (icon buttons included)
        const unnamed = await page.evaluate(() => {
            const name = (e) =>
                (e.getAttribute('aria-label') || '').trim() ||
                (e.getAttribute('aria-labelledby') && document.getElementById(e.getAttribute('aria-labelledby'))?.textContent.trim()) ||
                (e.labels && [...e.labels].map((l) => l.textContent.trim()).join(' ')) ||
                [...e.childNodes].filter((n) => !(n.nodeType === 1 && n.getAttribute('aria-hidden') === 'true')).map((n) => n.textContent).join('').trim();
            return [...document.querySelectorAll('button, input, textarea, select, a[href], summary, [tabindex]')]
                .filter((e) => !name(e))
                .map((e) => e.outerHTML.slice(0, 120));
        });
        assert.deepEqual(unnamed, []);
        // Tab reaches the main controls (one full cycle through the page)
        const reached = new Set();
        await page.evaluate(() => document.activeElement && document.activeElement.blur());
        for (let i = 0; i < 200; i++) {
            await page.keyboard.press('Tab');
            const id = await page.evaluate(() => document.activeElement?.id || document.activeElement?.getAttribute('aria-label') || '');
            if (reached.has(id) && id === 'toggle-theme') break;
            reached.add(id);
        }
        for (const id of ['new-session', 'composer-input', 'send', 'toggle-theme', 'toggle-files', 'refresh-files', 'conversation']) {
            assert.ok(reached.has(id), `Tab reaches #${id} (${[...reached].join(', ')})`);
        }
        // the theme toggle works from the keyboard
        const before = await page.evaluate(() => document.documentElement.dataset.theme);
        await page.focus('#toggle-theme');
        await page.keyboard.press('Enter');
        assert.notEqual(await page.evaluate(() => document.documentElement.dataset.theme), before);
        assertClean(assert, page);
        await page.closeAll();
    });

    test('narrow window and both themes', T, async () => {
        const page = await openPage(browser, `${srv.url}/`, { viewport: { width: 380, height: 740 }, colorScheme: 'dark' });
        assert.equal(await page.isHidden('#sidebar'), true, 'the sidebar folds away');
        const toggle = page.getByRole('button', { name: 'Sessions' });
        await toggle.click();
        assert.equal(await toggle.getAttribute('aria-expanded'), 'true');
        await page.click(sel.newSession);
        await page.waitForFunction(() => location.hash.length > 1);
        assert.equal(await page.isHidden('#sidebar'), true, 'choosing a session closes the drawer');
        assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'dark', 'follows the system preference');
        const noOverflow = () => page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
        await sendMessage(page, q('ui_md', 'narrow'));
        await waitStatus(page, 'Idle');
        assert.ok(await noOverflow(), 'no horizontal scrolling');
        await page.screenshot({ path: path.join(saveDir(), 'ui-narrow-dark.png') });
        await toggle.click();
        assert.equal(await toggle.getAttribute('aria-expanded'), 'true');
        assert.equal(await page.isVisible('#sidebar'), true);
        await page.keyboard.press('Escape');
        assert.equal(await page.isHidden('#sidebar'), true, 'Escape closes the drawer');
        const bg = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
        const dark = await bg();
        await page.getByRole('button', { name: 'Dark theme' }).click();
        assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'light');
        assert.notEqual(await bg(), dark);
        await page.reload();
        assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'light', 'the choice is remembered');
        assert.ok(await noOverflow());
        assertClean(assert, page);
        await page.closeAll();
    });
});
