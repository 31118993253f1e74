// SPDX-License-Identifier: MIT
// Socket.IO under bad input: malformed Engine.IO and Socket.IO packets, oversize payloads,
// unmasked and garbage WebSocket frames, a reader that falls behind its send-queue cap. Each
// offending connection is closed while the server and a healthy client carry on. Also: the
// protocol edge cases a raw client can reach (fragments, control frames, close handshake) and
// what normal mode does not serve.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before } from 'node:test';
import { startFakeOpenAI } from './lib/fake-openai.mjs';
import { connectClient, emitAck, rawSioSocket, rawWs, runEnded, until, wsFrame } from './lib/sio-client.mjs';
import { cleanup, createSession, get, q, request, startServer, streamQuery, test } from './lib/server.mjs';

const MAX_PAYLOAD = 10000;

let fake;
let srv;
let healthy;
let sessionId;

before(async () => {
    fake = await startFakeOpenAI();
    srv = await startServer({
        fake,
        args: ['--socketio.maxPayload', String(MAX_PAYLOAD), '--socketio.maxQueueBytes', '65536'],
    });
    sessionId = await createSession(srv);
    healthy = await connectClient(srv, { transports: ['websocket'] });
    await emitAck(healthy, 'join-session', sessionId);
});
after(async () => {
    healthy.disconnect();
    await cleanup(srv, fake);
});

/** The server answers HTTP and the healthy client still gets acks and events. */
async function carriesOn() {
    assert.equal((await get(srv, '/api/health')).status, 200);
    assert.equal(await emitAck(healthy, 'ping'), undefined);
    assert.ok(healthy.connected);
}

const eioUrl = (extra = '') => `/socket.io/?EIO=4&transport=polling${extra}`;

async function pollingSession() {
    const r = await get(srv, eioUrl());
    assert.equal(r.status, 200);
    assert.ok(r.text.startsWith('0{'), r.text);
    return JSON.parse(r.text.slice(1)).sid;
}

const poll = (sid) => get(srv, eioUrl(`&sid=${sid}`));
const push = (sid, body) => request(srv, 'POST', eioUrl(`&sid=${sid}`), body, { headers: { 'content-type': 'text/plain;charset=UTF-8' } });

test('handshake errors answer 400 with the reference error bodies', async () => {
    const cases = [
        ['/socket.io/?transport=polling', 5, 'Unsupported protocol version'],
        ['/socket.io/?EIO=3&transport=polling', 5, 'Unsupported protocol version'],
        ['/socket.io/?EIO=4', 0, 'Transport unknown'],
        ['/socket.io/?EIO=4&transport=flash', 0, 'Transport unknown'],
        ['/socket.io/?EIO=4&transport=polling&sid=nope', 1, 'Session ID unknown'],
        ['/socket.io/?EIO=4&transport=websocket', 3, 'Bad request'], // not an upgrade request
    ];
    for (const [url, code, message] of cases) {
        const r = await get(srv, url);
        assert.equal(r.status, 400, url);
        assert.deepEqual(r.json, { code, message }, url);
        assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
    }
    const r = await request(srv, 'POST', eioUrl(), '40');
    assert.deepEqual([r.status, r.json], [400, { code: 2, message: 'Bad handshake method' }]);
    await carriesOn();
});

test('malformed Engine.IO packets close their session only', async () => {
    const sid = await pollingSession();
    const r = await push(sid, 'abc');
    assert.equal(r.status, 400);
    assert.equal((await poll(sid)).status, 400); // the session is gone
    const sid2 = await pollingSession();
    assert.equal((await push(sid2, '4ok\x1e')).status, 400); // an empty packet after a separator
    assert.equal((await push(sid2, '4x')).status, 400);
    const sid3 = await pollingSession();
    assert.equal((await push(sid3, 'b!!!!')).status, 400); // bad base64
    const ws = await rawWs(srv, '/socket.io/?EIO=4&transport=websocket');
    await ws.waitFrame((f) => f.text && f.text.startsWith('0{'));
    ws.sendText('x');
    await ws.waitClose();
    await carriesOn();
});

test('malformed Socket.IO packets close their connection only', async () => {
    const bad = [
        '4abc', // unknown packet type
        '42{}', // event payload is not an array
        '42abc["message",1]', // invalid ack id
        '42[]', // no event name
        '42["connect"]', // reserved event name
        '40"str"', // connect payload is not an object
        '41{}', // disconnect with a payload
        '45-["a"]', // binary event without a valid attachment count
        '4/custom', // namespace without a packet type
    ];
    for (const p of bad) {
        const c = await rawSioSocket(srv);
        c.sendText(p);
        await c.waitClose().catch(() => assert.fail(`${p} did not close the connection`));
    }
    // binary data out of place, and text while attachments are awaited
    let c = await rawSioSocket(srv);
    c.send(wsFrame(Buffer.from([1, 2, 3]), { opcode: 2 }));
    await c.waitClose();
    c = await rawSioSocket(srv);
    c.sendText('451-["a",{"_placeholder":true,"num":0}]');
    c.sendText('42["a"]');
    await c.waitClose();
    // the same over polling
    const sid = await pollingSession();
    assert.equal((await push(sid, '40')).status, 200);
    assert.equal((await push(sid, '42{}')).status, 200);
    const r = await poll(sid);
    assert.ok(r.status === 400 || r.text.endsWith('1'), `${r.status} ${r.text}`);
    await carriesOn();
});

test('oversize payloads are refused and close the connection', async () => {
    const sid = await pollingSession();
    const r = await push(sid, `4${'x'.repeat(MAX_PAYLOAD + 10)}`);
    assert.equal(r.status, 413);
    assert.equal((await poll(sid)).status, 400);
    // one WebSocket message over maxPayload: close 1009
    let c = await rawSioSocket(srv);
    c.sendText(`42["big","${'y'.repeat(MAX_PAYLOAD)}"]`);
    await c.waitClose();
    assert.equal(c.closeCode, 1009);
    // the same message in fragments, each small
    c = await rawSioSocket(srv);
    const big = Buffer.from(`42["big","${'z'.repeat(MAX_PAYLOAD)}"]`);
    const parts = [big.subarray(0, 5000), big.subarray(5000, 9000), big.subarray(9000)];
    c.send(wsFrame(parts[0], { opcode: 1, fin: false }));
    c.send(wsFrame(parts[1], { opcode: 0, fin: false }));
    c.send(wsFrame(parts[2], { opcode: 0, fin: true }));
    await c.waitClose();
    assert.equal(c.closeCode, 1009);
    await carriesOn();
});

test('unmasked frames and garbage after the upgrade close the connection', async () => {
    let c = await rawSioSocket(srv);
    c.send(wsFrame('42["ping"]', { mask: false }));
    await c.waitClose();
    assert.equal(c.closeCode, 1002);
    c = await rawWs(srv, '/socket.io/?EIO=4&transport=websocket');
    c.send(crypto.randomBytes(64).fill(0xff, 0, 1)); // FIN + reserved bits + opcode 15
    await c.waitClose();
    // garbage in the same packet as the upgrade request
    const key = crypto.randomBytes(16).toString('base64');
    const { connect } = await import('./lib/server.mjs');
    const sock = await connect(srv);
    let data = '';
    sock.setEncoding('latin1');
    sock.on('data', (d) => (data += d));
    const closed = new Promise((r) => sock.on('close', r));
    sock.write(
        `GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
            `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n\x8f\xff garbage`,
    );
    await closed;
    assert.match(data, /^HTTP\/1\.1 101 /);
    await carriesOn();
});

test('fragments, pings and the close handshake work on a raw WebSocket', async () => {
    const c = await rawSioSocket(srv);
    const msg = Buffer.from('421["ping"]');
    c.send(wsFrame(msg.subarray(0, 4), { opcode: 1, fin: false }));
    c.send(wsFrame('hello', { opcode: 9 })); // a ping between the fragments
    c.send(wsFrame(msg.subarray(4), { opcode: 0, fin: true }));
    await c.waitFrame((f) => f.opcode === 10 && f.payload.toString() === 'hello');
    await c.waitFrame((f) => f.text === '431[]');
    c.send(wsFrame(Buffer.from([0x03, 0xe8]), { opcode: 8 }));
    await c.waitFrame((f) => f.opcode === 8);
    await c.waitClose();
    assert.equal(c.closeCode, 1000);
    await carriesOn();
});

test('a reader past its send-queue cap is dropped; the others get every event', async () => {
    // a polling client that joins and then never polls again
    const sid = await pollingSession();
    assert.equal((await push(sid, '40')).status, 200);
    assert.match((await poll(sid)).text, /^40\{"sid":/);
    assert.equal((await push(sid, `42["join-session","${sessionId}"]`)).status, 200);
    const before = healthy.agentEvents.length;
    const runs = healthy.agentEvents.filter((e) => e.type === 'agent-status' && e.data.isProcessing === false && e.seq !== undefined).length;
    const out = await streamQuery(srv, sessionId, q('slow n=600 delay=1'));
    assert.equal(out.status, 200);
    await until(() => runEnded(healthy, runs + 1), 10000, 'the healthy client to see the end');
    assert.equal((await poll(sid)).status, 400); // dropped, and its queue went with it
    assert.ok(healthy.agentEvents.length - before > 1200);
    assert.match(srv.stderr, /send queue over 65536 bytes/);
    await carriesOn();
});

test('a replay past the send-queue cap drops that socket in the middle of join-session', async () => {
    const big = await createSession(srv);
    const out = await streamQuery(srv, big, q('text', 'x'.repeat(70000))); // ~4 events of 70 KB
    assert.equal(out.status, 200);
    for (const transports of [['websocket'], ['polling']]) {
        const c = await connectClient(srv, { transports });
        const gone = new Promise((r) => c.once('disconnect', r));
        c.emit('join-session', { sessionId: big, since: 0 }, () => {});
        assert.match(await gone, /^transport (close|error)$/); // cut off: its queue is dropped
        c.disconnect();
    }
    await carriesOn();
});

test('normal mode has no test endpoints or test namespaces', async () => {
    assert.equal((await get(srv, '/engine.io/?EIO=4&transport=polling')).status, 404);
    const c = await rawSioSocket(srv);
    c.sendText('40/custom,');
    const f = await c.waitFrame((x) => x.text && x.text.startsWith('44'));
    assert.equal(f.text, '44/custom,{"message":"Invalid namespace"}');
    c.destroy();
    await carriesOn();
});
