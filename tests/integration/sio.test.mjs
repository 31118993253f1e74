// SPDX-License-Identifier: MIT
// Socket.IO with the official socket.io-client: the three ways to connect (polling, WebSocket,
// polling then upgrade), the seed's events (join-session, send-query, abort-query, ping,
// get-server-status) and the agent-event bridge, fan-out to 200 clients, `since` replay on
// reconnect, and recovery from a server-side ping timeout by the client's own reconnection.

import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { io } from 'socket.io-client';
import { startFakeOpenAI, textReply } from './lib/fake-openai.mjs';
import {
    QUERY_PREPARATION,
    assertSeqOrder,
    bridgeAll,
    closeAll,
    connectClient,
    emitAck,
    isLiveOnly,
    record,
    runEnded,
    storedEvents,
    until,
    withoutSeq,
} from './lib/sio-client.mjs';
import { cleanup, createSession, q, startServer, streamQuery, test } from './lib/server.mjs';

let fake;
let srv;

before(async () => {
    fake = await startFakeOpenAI();
    srv = await startServer({ fake });
});
after(() => cleanup(srv, fake));

/** Agent events as the SSE stream delivered them, with their ids as numbers. */
const sseEvents = (out) => out.frames.map((f) => ({ seq: Number(f.id), ev: f.event }));

/** The socket's agent-events expected for an SSE run: each mapped event carries the SSE id. */
function expectedWithSeq(out) {
    return sseEvents(out).flatMap(({ seq, ev }) => bridgeAll([ev]).map((m) => ({ ...m, seq })));
}

test('connects over polling only, over WebSocket only, and over polling then upgrade', async () => {
    const polling = await connectClient(srv, { transports: ['polling'] });
    const websocket = await connectClient(srv, { transports: ['websocket'] });
    const upgraded = await connectClient(srv);
    try {
        assert.equal(polling.io.engine.transport.name, 'polling');
        assert.equal(websocket.io.engine.transport.name, 'websocket');
        await until(() => upgraded.io.engine.transport.name === 'websocket', 5000, 'the upgrade');
        for (const s of [polling, websocket, upgraded]) {
            assert.equal(await emitAck(s, 'ping'), undefined); // acked with no arguments
            assert.match(s.id, /^[A-Za-z0-9_-]{21}$/);
        }
        assert.equal(polling.io.engine.transport.name, 'polling');
    } finally {
        await closeAll([polling, websocket, upgraded]);
    }
});

test('join-session answers agent-status; unknown sessions get "Session not found"; server status', async () => {
    const sessionId = await createSession(srv);
    const s = await connectClient(srv);
    try {
        assert.deepEqual(await emitAck(s, 'join-session', sessionId), { success: true });
        await until(() => s.statuses.length === 1, 2000, 'agent-status');
        assert.deepEqual(s.statuses[0], { isProcessing: false, state: 'idle' });
        assert.deepEqual(await emitAck(s, 'join-session', { sessionId }), { success: true });
        assert.deepEqual(await emitAck(s, 'join-session', 'no-such-session'), { success: false, error: 'Session not found' });
        s.emit('join-session', { sessionId: 'nope' }); // no ack: the error event alone
        await until(() => s.errors.length === 2, 2000, 'two error events');
        assert.deepEqual(s.errors, ['Session not found', 'Session not found']);
        s.emit('send-query', { sessionId: 'nope', query: 'x' });
        s.emit('abort-query', { sessionId: 'nope' });
        await until(() => s.errors.length === 4, 2000, 'errors for send-query and abort-query');
        const status = await emitAck(s, 'get-server-status');
        assert.deepEqual(status, { isExclusive: false, runningSessionId: null, canAcceptNewRequest: true });
        await until(() => s.received.includes('server-status'), 2000, 'server-status');
        assert.deepEqual(await emitAck(s, 'no-such-event', 1), { success: false, error: 'Unknown event: no-such-event' });
    } finally {
        await closeAll([s]);
    }
});

test('send-query runs the agent and every event arrives mapped, in order', async () => {
    const sessionId = await createSession(srv);
    const s = await connectClient(srv, { transports: ['websocket'] });
    try {
        await emitAck(s, 'join-session', sessionId);
        const query = q('text', 'hello over socket.io');
        assert.deepEqual(await emitAck(s, 'send-query', { sessionId, query }), { success: true });
        await until(() => runEnded(s), 10000, 'the end of the run');
        const got = s.agentEvents;
        assertSeqOrder(got);
        assert.deepEqual(withoutSeq(got.slice(0, 1)), [QUERY_PREPARATION]);
        const types = got.map((e) => e.type);
        assert.equal(types[1], 'query');
        assert.deepEqual(got[1].data, { text: query });
        const text = got.filter((e) => e.type === 'streaming_message').map((e) => e.data.content).join('');
        assert.equal(text, textReply(query));
        const answer = got.find((e) => e.type === 'answer');
        assert.equal(answer.data.text, textReply(query));
        // the persisted part is exactly the bridge mapping of what the store holds
        const stored = await storedEvents(srv, sessionId);
        assert.deepEqual(withoutSeq(got.filter((e) => !isLiveOnly(e))), bridgeAll(stored));
        // a second query while the first one runs is refused with the busy message
        const slow = q('slow n=30 delay=20');
        assert.deepEqual(await emitAck(s, 'send-query', { sessionId, query: slow }), { success: true });
        const busy = await emitAck(s, 'send-query', { sessionId, query: 'again' });
        assert.equal(busy.success, false);
        assert.match(busy.error, /^Agent is already executing a task/);
        assert.deepEqual(await emitAck(s, 'send-query', { sessionId, query: '' }), { success: false, error: 'Query is required' });
        await until(() => runEnded(s, 2), 10000, 'the end of the second run');
    } finally {
        await closeAll([s]);
    }
});

test('a query over the HTTP stream reaches joined sockets (WebSocket and polling) in SSE order', async () => {
    const sessionId = await createSession(srv);
    const ws = await connectClient(srv, { transports: ['websocket'] });
    const poll = await connectClient(srv, { transports: ['polling'] });
    try {
        await emitAck(ws, 'join-session', sessionId);
        await emitAck(poll, 'join-session', { sessionId });
        const out = await streamQuery(srv, sessionId, q('tool', 'write then read'));
        assert.equal(out.status, 200);
        await until(() => runEnded(ws) && runEnded(poll), 10000, 'both sockets to see the end');
        const expected = expectedWithSeq(out);
        assert.ok(expected.some((e) => e.type === 'event' && e.data.type === 'tool_call'), 'the run has tool calls');
        assert.deepEqual(ws.agentEvents, expected);
        assert.deepEqual(poll.agentEvents, expected);
    } finally {
        await closeAll([ws, poll]);
    }
});

test('abort-query answers abort-result exactly once', async () => {
    const sessionId = await createSession(srv);
    const s = await connectClient(srv);
    try {
        await emitAck(s, 'join-session', sessionId);
        s.emit('send-query', { sessionId, query: q('slow n=300 delay=20') });
        await until(() => s.agentEvents.some((e) => e.type === 'streaming_message'), 5000, 'the first delta');
        s.emit('abort-query', { sessionId });
        await until(() => s.received.includes('abort-result'), 5000, 'abort-result');
        await until(() => s.agentEvents.some((e) => e.type === 'aborted'), 5000, 'the aborted event');
        await new Promise((r) => setTimeout(r, 200));
        const results = [];
        s.onAny((n, a) => n === 'abort-result' && results.push(a));
        assert.equal(s.received.filter((n) => n === 'abort-result').length, 1);
        const aborted = s.agentEvents.find((e) => e.type === 'aborted');
        assert.deepEqual(aborted.data, { message: 'Request was aborted' });
        const after = s.agentEvents.slice(s.agentEvents.indexOf(aborted));
        assert.ok(after.some((e) => e.type === 'agent-status' && e.data.isProcessing === false), 'idle status after the abort');
        // nothing runs any more: a second abort answers false, once
        assert.deepEqual(await emitAck(s, 'abort-query', { sessionId }), { success: false });
        await until(() => results.length === 1, 2000, 'the second abort-result');
        assert.deepEqual(results, [{ success: false }]);
    } finally {
        await closeAll([s]);
    }
});

test('200 clients on one session all receive every event, in the same order', { timeout: 60000 }, async () => {
    const sessionId = await createSession(srv);
    const clients = [];
    try {
        for (let i = 0; i < 200; i += 20) {
            const batch = [];
            for (let k = 0; k < 20; k++) batch.push(connectClient(srv, { transports: [i + k < 160 ? 'websocket' : 'polling'] }, 10000));
            clients.push(...(await Promise.all(batch)));
        }
        await Promise.all(clients.map((c) => emitAck(c, 'join-session', sessionId)));
        const out = await streamQuery(srv, sessionId, q('slow n=60 delay=2'));
        assert.equal(out.status, 200);
        await until(() => clients.every((c) => runEnded(c)), 20000, 'every client to see the end');
        const expected = expectedWithSeq(out);
        assert.ok(expected.length > 120);
        for (const c of clients) assert.deepEqual(c.agentEvents, expected);
    } finally {
        await closeAll(clients);
    }
});

test('a client that reconnects with since receives exactly what it missed, then goes on live', async () => {
    const sessionId = await createSession(srv);
    const a = await connectClient(srv, { transports: ['websocket'] });
    const b = await connectClient(srv, { transports: ['websocket'] });
    let a2;
    try {
        await emitAck(a, 'join-session', sessionId);
        await emitAck(b, 'join-session', sessionId);
        await emitAck(b, 'send-query', { sessionId, query: q('text', 'first') });
        await until(() => runEnded(a) && runEnded(b), 10000, 'run 1');
        const lastSeq = Math.max(...a.agentEvents.filter((e) => e.seq !== undefined).map((e) => e.seq));
        a.disconnect();
        // missed while away: one run over HTTP
        const out = await streamQuery(srv, sessionId, q('tool', 'second'));
        assert.equal(out.status, 200);
        await until(() => runEnded(b, 2), 10000, 'run 2 at b');
        a2 = await connectClient(srv, { transports: ['polling'] });
        assert.deepEqual(await emitAck(a2, 'join-session', { sessionId, since: lastSeq }), { success: true });
        const missed = b.agentEvents.filter((e) => e.seq > lastSeq && !isLiveOnly(e));
        assert.ok(missed.length > 5);
        await until(() => a2.agentEvents.length >= missed.length, 5000, 'the replay');
        assert.deepEqual(a2.agentEvents, missed);
        // live from here: the next run arrives whole, with nothing repeated
        const mark = b.agentEvents.length;
        await emitAck(a2, 'send-query', { sessionId, query: q('text', 'third') });
        await until(() => runEnded(b, 3) && runEnded(a2, 2), 10000, 'run 3');
        assert.deepEqual(a2.agentEvents.slice(missed.length), b.agentEvents.slice(mark));
        assertSeqOrder(a2.agentEvents);
    } finally {
        await closeAll([a, b, a2].filter(Boolean));
    }
});

test('a connection the server drops on ping timeout is re-established by the client', { timeout: 30000 }, async () => {
    const s2 = await startServer({ fake, args: ['--socketio.pingInterval', '150', '--socketio.pingTimeout', '150'] });
    const sessionId = await createSession(s2);
    let lastSeq = -1;
    let joins = 0;
    const client = io(s2.url, { forceNew: true, transports: ['websocket'], reconnectionDelay: 400, reconnectionDelayMax: 400 });
    record(client);
    client.on('agent-event', (e) => {
        if (e.seq !== undefined) lastSeq = Math.max(lastSeq, e.seq);
    });
    const reasons = [];
    client.on('disconnect', (r) => reasons.push(r));
    client.on('connect', () => {
        const arg = lastSeq >= 0 ? { sessionId, since: lastSeq } : sessionId;
        client.emit('join-session', arg, () => joins++);
    });
    try {
        await until(() => joins === 1, 5000, 'the first join');
        await streamQuery(s2, sessionId, q('text', 'before the drop'));
        await until(() => runEnded(client), 5000, 'run 1');
        // stop answering pings on this connection only: the server must time it out
        const engine = client.io.engine;
        const send = engine._sendPacket.bind(engine);
        engine._sendPacket = (type, ...rest) => (type === 'pong' ? undefined : send(type, ...rest));
        await until(() => reasons.length === 1, 5000, 'the server to drop the connection');
        // a run while the client is away; it comes back through since
        const out = await streamQuery(s2, sessionId, q('text', 'while away'));
        await until(() => joins === 2, 5000, 'the reconnection and second join');
        await until(() => runEnded(client, 2), 5000, 'the missed run');
        await streamQuery(s2, sessionId, q('text', 'after the return'));
        await until(() => runEnded(client, 3), 5000, 'run 3');
        assert.ok(client.connected);
        assert.equal(client.io.engine === engine, false, 'a new Engine.IO connection');
        // everything persisted arrived exactly once, in order
        const stored = await storedEvents(s2, sessionId);
        assert.deepEqual(withoutSeq(client.agentEvents.filter((e) => !isLiveOnly(e))), bridgeAll(stored));
        assert.ok(out.events.length > 0);
        assert.match(s2.stderr + reasons.join(), /transport close|ping timeout/);
    } finally {
        client.disconnect();
        await cleanup(s2);
    }
});
