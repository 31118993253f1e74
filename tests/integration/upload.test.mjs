// SPDX-License-Identifier: MIT
// POST /api/v1/files/upload (issue 15, upstream PR #1942): multipart field `files`, at most 10
// files of 20 MB each, stored under <workspace>/uploads/<sanitized stem>-<10-char id><ext>, the
// body streamed to disk. Clients like curl (fetch with FormData) and raw sockets for the broken
// bodies: no boundary, a truncated body, huge part headers, many parts, cut connections -- each
// answers 4xx (or closes) and the server keeps serving. The access rules apply: another origin
// is refused, and with a token an unauthenticated upload gets 401 before any byte is stored.
// In chromium: the built-in UI's attach button, drag-and-drop and paste; an image reaches the
// model as an image part, other files as workspace paths in the message.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe } from 'node:test';
import { startFakeOpenAI } from './lib/fake-openai.mjs';
import { cleanup, createSession, get, q, rawConnection, startServer, test } from './lib/server.mjs';
import { SKIP_REASON, assertClean, launchBrowser, openPage, sel, sendMessage, waitStatus } from './lib/ui-browser.mjs';

const MB20 = 20 * 1024 * 1024;
const STORED_RE = /^[A-Za-z0-9._-]{1,120}-[A-Za-z0-9_-]{10}[A-Za-z0-9.]{0,20}$/;

function form(files, fields = {}) {
    const fd = new FormData();
    for (const [k, v] of Object.entries(fields)) fd.append(k, v);
    for (const f of files) fd.append(f.field || 'files', new Blob([f.data], { type: f.type || 'application/octet-stream' }), f.name);
    return fd;
}

async function upload(srv, body, { query = '', headers = {} } = {}) {
    const res = await fetch(`${srv.url}/api/v1/files/upload${query}`, { method: 'POST', body, headers });
    const text = await res.text();
    let json = null;
    try {
        json = JSON.parse(text);
    } catch {
        /* not JSON */
    }
    return { status: res.status, json, text, headers: res.headers };
}

const uploadsOf = (srv) => {
    const d = path.join(srv.workspace, 'uploads');
    return fs.existsSync(d) ? fs.readdirSync(d).sort() : [];
};

async function stillServing(srv) {
    const r = await get(srv, '/api/v1/health');
    assert.equal(r.status, 200, 'the server still answers');
}

/** A raw request with a multipart head; returns the connection (not yet answered). */
async function rawUpload(srv, sid, body, { boundary = 'B0und', contentLength = Buffer.byteLength(body), extra = '' } = {}) {
    const c = await rawConnection(srv);
    await c.write(
        `POST /api/v1/files/upload?sessionId=${sid} HTTP/1.1\r\nHost: 127.0.0.1:${srv.port}\r\n` +
            `Content-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: ${contentLength}\r\n${extra}\r\n`,
    );
    if (body.length) await c.write(body);
    return c;
}

const part = (name, filename, data, b = 'B0und') =>
    `--${b}\r\nContent-Disposition: form-data; name="${name}"${filename ? `; filename="${filename}"` : ''}\r\nContent-Type: text/plain\r\n\r\n${data}\r\n`;

describe('POST /api/v1/files/upload', () => {
    let fake;
    let srv;
    let sid;
    before(async () => {
        fake = await startFakeOpenAI();
        srv = await startServer({ fake });
        sid = await createSession(srv);
    });
    after(() => cleanup(srv, fake));

    test('several files: stored under uploads/ with safe names, answered as upstream', async () => {
        const big = Buffer.alloc(3 * 1024 * 1024 + 17, 7);
        const files = [
            { name: 'notes.txt', data: 'hello notes', type: 'text/plain' },
            { name: '../../etc/pass wd.conf', data: 'not here' },
            { name: '..', data: 'dots' },
            { name: 'big.bin', data: big },
            { name: `${'x'.repeat(300)}.${'e'.repeat(40)}`, data: 'long' },
        ];
        const r = await upload(srv, form(files), { query: `?sessionId=${sid}` });
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json.files.length, 5);
        const [notes, trick, dots, bigf, long] = r.json.files;
        assert.deepEqual(Object.keys(notes).sort(), ['mimeType', 'name', 'relativePath', 'size', 'storedName']);
        assert.equal(notes.name, 'notes.txt');
        assert.match(notes.storedName, /^notes-[A-Za-z0-9_-]{10}\.txt$/);
        assert.equal(notes.relativePath, `uploads/${notes.storedName}`);
        assert.equal(notes.size, 11);
        assert.equal(notes.mimeType, 'text/plain');
        assert.equal(trick.name, '../../etc/pass wd.conf', 'the answer keeps the name as sent');
        assert.match(trick.storedName, /^pass_wd-[A-Za-z0-9_-]{10}\.conf$/, 'stored under its last component only');
        assert.match(dots.storedName, /^file-[A-Za-z0-9_-]{10}$/);
        assert.equal(bigf.size, big.length);
        assert.equal(long.storedName.length, 120 + 1 + 10 + 20);
        for (const f of r.json.files) assert.match(f.storedName, STORED_RE);
        const dir = path.join(srv.workspace, 'uploads');
        assert.equal(fs.readFileSync(path.join(dir, notes.storedName), 'utf8'), 'hello notes');
        assert.ok(fs.readFileSync(path.join(dir, bigf.storedName)).equals(big), 'the big file byte for byte');
        assert.equal(fs.readFileSync(path.join(dir, trick.storedName), 'utf8'), 'not here');
        assert.equal(fs.existsSync(path.join(srv.workspace, '..', 'etc')), false);
        // the session may also come as a form field sent before the files
        const r2 = await upload(srv, form([{ name: 'f.md', data: '# hi' }], { sessionId: sid }));
        assert.equal(r2.status, 200, r2.text);
        // the workspace route lists them
        const listed = await get(srv, `/api/v1/sessions/workspace/files?sessionId=${sid}&path=/uploads`);
        assert.equal(listed.status, 200);
        assert.ok(listed.json.files.some((f) => f.name === notes.storedName));
    });

    test('limits: 20 MB + 1 byte is 413 LIMIT_FILE_SIZE, 11 files 413, none or no session 400', async () => {
        const before = uploadsOf(srv);
        const over = await upload(srv, form([{ name: 'ok.txt', data: 'fine' }, { name: 'huge.bin', data: Buffer.alloc(MB20 + 1) }]), { query: `?sessionId=${sid}` });
        assert.equal(over.status, 413);
        assert.deepEqual(over.json, { error: 'Each file must be 20MB or smaller', code: 'LIMIT_FILE_SIZE' });
        const exact = await upload(srv, form([{ name: 'exact.bin', data: Buffer.alloc(MB20) }]), { query: `?sessionId=${sid}` });
        assert.equal(exact.status, 200, 'exactly 20 MB is fine');
        fs.rmSync(path.join(srv.workspace, 'uploads', exact.json.files[0].storedName));
        const many = await upload(srv, form(Array.from({ length: 11 }, (_, i) => ({ name: `f${i}.txt`, data: 'x' }))), { query: `?sessionId=${sid}` });
        assert.equal(many.status, 413);
        assert.equal(many.json.code, 'LIMIT_FILE_COUNT');
        const none = await upload(srv, form([], { note: 'no files' }), { query: `?sessionId=${sid}` });
        assert.equal(none.status, 400);
        assert.equal(none.json.error, 'No files uploaded');
        const nosid = await upload(srv, form([{ name: 'a.txt', data: 'a' }]));
        assert.equal(nosid.status, 400);
        assert.equal(nosid.json.error, 'Session ID is required');
        const unknown = await upload(srv, form([{ name: 'a.txt', data: 'a' }]), { query: '?sessionId=nope' });
        assert.equal(unknown.status, 404);
        const json = await fetch(`${srv.url}/api/v1/files/upload?sessionId=${sid}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
        assert.equal(json.status, 400, 'not multipart');
        assert.deepEqual(uploadsOf(srv), before, 'a refused upload leaves no file behind, not even the ones before the bad one');
        await stillServing(srv);
    });

    test('broken bodies over raw sockets: 4xx or a close, nothing stored, the server keeps serving', async () => {
        const before = uploadsOf(srv);
        // no boundary parameter
        let c = await rawConnection(srv);
        await c.write(`POST /api/v1/files/upload?sessionId=${sid} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data\r\nContent-Length: 5\r\n\r\nhello`);
        let [res] = await c.responses(1);
        assert.equal(res.status, 400);
        c.close();
        // truncated: the closing delimiter never comes (the framing itself is complete)
        const trunc = `${part('files', 'a.txt', 'abc')}--B0und\r\nContent-Disposition: form-data; name="files"; filename="b.txt"\r\n\r\nhalf of it`;
        c = await rawUpload(srv, sid, trunc);
        [res] = await c.responses(1);
        assert.equal(res.status, 400);
        assert.equal(JSON.parse(res.body).code, 'MALFORMED_MULTIPART');
        c.close();
        // the body is cut off by the client: the connection closes, the partial file is removed
        c = await rawUpload(srv, sid, `${part('files', 'cut.txt', 'x'.repeat(100000))}`, { contentLength: 10_000_000 });
        await new Promise((r) => setTimeout(r, 200));
        c.close();
        // huge part headers
        const hugeHead = `--B0und\r\nContent-Disposition: form-data; name="files"; filename="h.txt"\r\nX-Pad: ${'p'.repeat(20000)}\r\n\r\nx\r\n--B0und--\r\n`;
        c = await rawUpload(srv, sid, hugeHead);
        [res] = await c.responses(1);
        assert.equal(res.status, 431);
        c.close();
        // many parts (fields), far beyond the part cap
        const manyParts = `${Array.from({ length: 200 }, (_, i) => part(`f${i}`, null, 'v')).join('')}--B0und--\r\n`;
        c = await rawUpload(srv, sid, manyParts);
        [res] = await c.responses(1);
        assert.equal(res.status, 413);
        assert.equal(JSON.parse(res.body).code, 'LIMIT_PART_COUNT');
        c.close();
        // garbage that is no multipart at all
        c = await rawUpload(srv, sid, 'just some bytes\r\n--nope--\r\n');
        [res] = await c.responses(1);
        assert.equal(res.status, 400);
        c.close();
        // chunked, with Expect: 100-continue: the 100 comes once the route reads the body
        c = await rawConnection(srv);
        await c.write(`POST /api/v1/files/upload?sessionId=${sid} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=B0und\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n`);
        await c.waitFor((x) => x.data.startsWith('HTTP/1.1 100 Continue\r\n\r\n'), 5000, '100 Continue');
        const chunkBody = `${part('files', 'chunked.txt', 'in chunks')}--B0und--\r\n`;
        for (let i = 0; i < chunkBody.length; i += 7) {
            const piece = chunkBody.slice(i, i + 7);
            await c.write(`${Buffer.byteLength(piece).toString(16)}\r\n${piece}\r\n`);
        }
        await c.write('0\r\n\r\n');
        await c.waitFor((x) => /\r\n\r\n\{"files"/.test(x.data), 5000, 'the answer');
        const stored = JSON.parse(c.data.slice(c.data.indexOf('{"files"')));
        assert.equal(stored.files[0].size, 9);
        // ...and the connection carries the next request (keep-alive after a read body)
        await c.write('GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
        await c.waitFor((x) => x.data.includes('{"status":"ok"}'), 5000, 'a second answer');
        c.close();
        fs.rmSync(path.join(srv.workspace, 'uploads', stored.files[0].storedName));
        await new Promise((r) => setTimeout(r, 200));
        assert.deepEqual(uploadsOf(srv), before, 'nothing of the broken uploads stays');
        await stillServing(srv);
        assert.doesNotMatch(srv.stderr, /AddressSanitizer|runtime error/);
    });

    test('concurrent uploads and clients cut off mid-body: the whole ones are stored intact, the cut ones leave nothing', async () => {
        const before = new Set(uploadsOf(srv));
        const data = Buffer.alloc(8 * 1024 * 1024);
        for (let i = 0; i < data.length; i += 4096) data.writeUInt32LE(i, i);
        const whole = Array.from({ length: 4 }, (_, i) => upload(srv, form([{ name: `whole${i}.bin`, data }]), { query: `?sessionId=${sid}` }));
        const cuts = [1, 2, 3].map(async (k) => {
            const head = part('files', `cut${k}.bin`, '');
            const c = await rawUpload(srv, sid, head.slice(0, -2), { contentLength: 30_000_000 });
            const chunk = Buffer.alloc(256 * 1024, k);
            for (let sent = 0; sent < k * 1024 * 1024; sent += chunk.length) await c.write(chunk);
            c.close();
        });
        const results = await Promise.all(whole);
        await Promise.all(cuts);
        for (const r of results) {
            assert.equal(r.status, 200, r.text);
            const f = r.json.files[0];
            assert.equal(f.size, data.length);
            assert.ok(fs.readFileSync(path.join(srv.workspace, 'uploads', f.storedName)).equals(data), `${f.storedName} intact`);
        }
        await new Promise((r) => setTimeout(r, 300));
        const added = uploadsOf(srv).filter((n) => !before.has(n));
        assert.equal(added.length, 4, `only the whole uploads: ${added}`);
        for (const n of added) fs.rmSync(path.join(srv.workspace, 'uploads', n));
        await stillServing(srv);
    });

    test('a symlink planted at uploads/ is not followed', async () => {
        const s2 = await startServer({ fake });
        try {
            const id = await createSession(s2);
            const outside = fs.mkdtempSync('/tmp/tars-outside-');
            fs.symlinkSync(outside, path.join(s2.workspace, 'uploads'));
            const r = await upload(s2, form([{ name: 'a.txt', data: 'a' }]), { query: `?sessionId=${id}` });
            assert.equal(r.status, 500);
            assert.deepEqual(fs.readdirSync(outside), [], 'nothing written through the link');
            fs.rmSync(outside, { recursive: true });
        } finally {
            await cleanup(s2);
        }
    });
});

describe('uploads under the access rules', () => {
    test('another origin is refused (403, nothing stored); with a token, no credentials is 401', async () => {
        const fake = await startFakeOpenAI();
        const token = 'upload-token-0123456789abcdef';
        const srv = await startServer({ fake });
        const srv2 = await startServer({ fake, args: ['--auth-token', token] });
        try {
            const sid = await createSession(srv);
            const cross = await upload(srv, form([{ name: 'a.txt', data: 'a' }]), { query: `?sessionId=${sid}`, headers: { origin: 'https://evil.example' } });
            assert.equal(cross.status, 403);
            assert.equal(cross.json.error, 'Origin not allowed');
            assert.equal(cross.headers.get('access-control-allow-origin'), null);
            const same = await upload(srv, form([{ name: 'a.txt', data: 'a' }]), { query: `?sessionId=${sid}`, headers: { origin: srv.url } });
            assert.equal(same.status, 200, 'the page of the server itself may upload');
            const auth = { authorization: `Bearer ${token}` };
            const created = await fetch(`${srv2.url}/api/v1/sessions/create`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{}' });
            const sid2 = (await created.json()).sessionId;
            const anon = await upload(srv2, form([{ name: 'a.txt', data: Buffer.alloc(100 * 1024) }]), { query: `?sessionId=${sid2}` });
            assert.equal(anon.status, 401);
            // a big one announced with Expect: 100-continue is refused before its body is sent
            const c = await rawConnection(srv2);
            await c.write(`POST /api/v1/files/upload?sessionId=${sid2} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=B0und\r\nContent-Length: 50000000\r\nExpect: 100-continue\r\n\r\n`);
            const [res] = await c.responses(1);
            assert.equal(res.status, 401);
            assert.ok(!c.data.includes('100 Continue'), 'no 100 Continue for a refused upload');
            c.close();
            assert.deepEqual(uploadsOf(srv2), []);
            const ok = await upload(srv2, form([{ name: 'a.txt', data: 'a' }]), { query: `?sessionId=${sid2}`, headers: auth });
            assert.equal(ok.status, 200, ok.text);
            await stillServing(srv);
        } finally {
            await cleanup(srv, srv2, fake);
        }
    });
});

describe('attachments in the built-in UI (chromium)', { skip: SKIP_REASON }, () => {
    let fake;
    let srv;
    let browser;
    before(async () => {
        fake = await startFakeOpenAI();
        srv = await startServer({ fake });
        browser = await launchBrowser();
    });
    after(async () => {
        if (browser) await browser.close();
        await cleanup(srv, fake);
    });

    test('attach, drop and paste: the image goes as an image part, the other files as workspace paths', { timeout: 60000 }, async () => {
        const page = await openPage(browser, `${srv.url}/`);
        await page.click(sel.newSession);
        await page.waitForFunction(() => location.hash.length > 1);
        const sid = await page.evaluate(() => decodeURIComponent(location.hash.slice(1)));
        // 1x1 PNG
        const png = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64');
        await page.setInputFiles('#attach-input', [
            { name: 'dot.png', mimeType: 'image/png', buffer: png },
            { name: '../report.csv', mimeType: 'text/csv', buffer: Buffer.from('a,b\n1,2\n') },
        ]);
        // a drop on the composer and a paste into the text box
        await page.evaluate(() => {
            const dt = new DataTransfer();
            dt.items.add(new File(['dropped text'], 'dropped.txt', { type: 'text/plain' }));
            const form = document.getElementById('composer');
            form.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true }));
            form.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
            const pt = new DataTransfer();
            pt.items.add(new File(['pasted'], 'pasted.md', { type: 'text/markdown' }));
            document.getElementById('composer-input').dispatchEvent(new ClipboardEvent('paste', { clipboardData: pt, bubbles: true, cancelable: true }));
        });
        assert.equal(await page.locator('#attachments li').count(), 4);
        const query = q('text', 'what is in these files?');
        await sendMessage(page, query);
        await waitStatus(page, 'Idle');
        const [req] = fake.requestsMatching('what is in these files?');
        assert.ok(req, 'the model was asked');
        const user = req.body.messages.filter((m) => m.role === 'user').at(-1);
        assert.ok(Array.isArray(user.content), `a multimodal message: ${JSON.stringify(user.content).slice(0, 300)}`);
        const text = user.content.find((p) => p.type === 'text').text;
        const img = user.content.find((p) => p.type === 'image_url');
        assert.equal(img.image_url.url, `data:image/png;base64,${png.toString('base64')}`);
        const paths = text.match(/uploads\/[^\s]+/g);
        assert.equal(paths.length, 3, text);
        const names = fs.readdirSync(path.join(srv.workspace, 'uploads'));
        for (const p of paths) assert.ok(names.includes(p.slice(8)), `${p} is in the workspace`);
        assert.ok(paths.some((p) => /^uploads\/report-[A-Za-z0-9_-]{10}\.csv$/.test(p)), 'the ../ name stored safely');
        assert.equal(await page.locator('#attachments li').count(), 0, 'the attachments are cleared after sending');
        assert.ok(page.problems.requests.some((r) => r.method === 'POST' && r.path === `/api/v1/files/upload?sessionId=${sid}`));
        assertClean(assert, page);
        await page.closeAll();
    });

    test('a file of 20 MB + 1 byte is refused: the page says why, nothing is stored, the model is not asked', { timeout: 60000 }, async () => {
        const page = await openPage(browser, `${srv.url}/`);
        await page.click(sel.newSession);
        await page.waitForFunction(() => location.hash.length > 1);
        const before = uploadsOf(srv);
        await page.setInputFiles('#attach-input', [{ name: 'huge.bin', mimeType: 'application/octet-stream', buffer: Buffer.alloc(MB20 + 1, 1) }]);
        const answered = page.waitForResponse((r) => r.url().includes('/api/v1/files/upload'));
        const asked = fake.requests.length;
        await sendMessage(page, q('text', 'here is a big one'));
        const res = await answered;
        assert.equal(res.status(), 413);
        await page.waitForSelector(sel.error);
        assert.match(await page.locator(sel.error).last().textContent(), /Cannot upload the files: Each file must be 20MB or smaller/);
        assert.equal(fake.requests.length, asked, 'the query was not sent');
        assert.deepEqual(uploadsOf(srv), before, 'nothing stored');
        assert.equal(await page.locator('#attachments li').count(), 1, 'the attachment stays, to be removed or retried');
        assertClean(assert, page, { allowHttp: [/^413 POST \/api\/v1\/files\/upload/] });
        await page.closeAll();
    });
});
