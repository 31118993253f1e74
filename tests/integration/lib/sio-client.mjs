// SPDX-License-Identifier: MIT
// Socket.IO helpers for the integration tests: official socket.io-client connections that record
// what they receive, the bridge mapping of agent events (anchor-api.md §1.7 + §3.8) written out
// in JavaScript to compare against, and a raw WebSocket client (masked or unmasked frames) for
// the bad-input tests.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import net from 'node:net';
import { io } from 'socket.io-client';
import { get } from './server.mjs';

/**
 * Connects with the official client and resolves once connected. opts go to io() (transports,
 * reconnection, ...); by default no reconnection and a fresh manager per call. The socket records
 * `socket.agentEvents` ([{type, data, seq}]), `socket.statuses` (agent-status events),
 * `socket.errors` (error events) and `socket.received` (every event name in order).
 */
export async function connectClient(srv, opts = {}, timeoutMs = 5000) {
    const socket = io(srv.url, { reconnection: false, forceNew: true, timeout: timeoutMs, ...opts });
    record(socket);
    await new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('socket.io connect timed out')), timeoutMs);
        socket.once('connect', () => {
            clearTimeout(t);
            resolve();
        });
        socket.once('connect_error', (e) => {
            clearTimeout(t);
            reject(e);
        });
    });
    return socket;
}

export function record(socket) {
    socket.agentEvents = [];
    socket.statuses = [];
    socket.errors = [];
    socket.received = [];
    socket.onAny((name, ...args) => {
        socket.received.push(name);
        if (name === 'agent-event') socket.agentEvents.push(args[0]);
        else if (name === 'agent-status') socket.statuses.push(args[0]);
        else if (name === 'error') socket.errors.push(args[0]);
    });
}

/** emit with an ack; rejects after timeoutMs. */
export function emitAck(socket, event, ...args) {
    return socket.timeout(5000).emitWithAck(event, ...args);
}

/** Waits until pred(socket) is truthy (polling every 10 ms). */
export async function until(pred, timeoutMs = 10000, what = 'condition') {
    const end = Date.now() + timeoutMs;
    for (;;) {
        const v = pred();
        if (v) return v;
        if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 10));
    }
}

/** True once the socket has seen the agent-status that ends a run (isProcessing false). */
export function runEnded(socket, runs = 1) {
    return socket.agentEvents.filter((e) => e.type === 'agent-status' && e.data.isProcessing === false && e.seq !== undefined)
        .length >= runs;
}

/** The session's stored events (GET /api/v1/sessions/events). */
export async function storedEvents(srv, sessionId) {
    const r = await get(srv, `/api/v1/sessions/events?sessionId=${encodeURIComponent(sessionId)}`);
    assert.equal(r.status, 200, `events: ${r.status} ${r.text}`);
    assert.ok(Array.isArray(r.json.events), r.text);
    return r.json.events;
}

export async function closeAll(sockets) {
    for (const s of sockets) s.disconnect();
    await new Promise((r) => setTimeout(r, 20));
}

// --- the bridge mapping ----------------------------------------------------------------------

const status = (data) => ({ type: 'agent-status', data });

function pick(base, ev, keys) {
    const o = { ...base };
    for (const k of keys) if (ev[k] !== undefined) o[k] = ev[k];
    return o;
}

/** What the bridge emits as agent-event {type, data} for one agent event. */
export function bridgeMap(ev) {
    switch (ev.type) {
        case 'user_message':
            return [
                { type: 'query', data: { text: ev.content } },
                status({ isProcessing: true, state: 'processing', phase: 'request_processing', message: 'Processing your request...' }),
            ];
        case 'assistant_message':
            return [{ type: 'answer', data: { text: ev.content } }];
        case 'tool_call':
            return [
                { type: 'event', data: pick({ type: 'tool_call' }, ev, ['name', 'toolCallId', 'arguments']) },
                status({ isProcessing: true, state: 'executing_tools', phase: 'tool_execution', message: `Executing ${ev.name}...` }),
            ];
        case 'tool_result':
            return [{ type: 'event', data: pick({ type: 'tool_result' }, ev, ['name', 'toolCallId', 'content', 'error']) }];
        case 'system': {
            const out = [{ type: ev.level, data: { message: ev.message } }];
            if (ev.message.includes('aborted')) {
                out.push({ type: 'aborted', data: { message: ev.message } });
                out.push(status({ isProcessing: false, state: 'idle' }));
            } else if (ev.message.includes('status')) {
                out.push({ type: 'status', data: { message: ev.message } });
            }
            return out;
        }
        case 'assistant_streaming_message': {
            const out = [{ type: 'streaming_message', data: pick({}, ev, ['content', 'isComplete', 'messageId']) }];
            if (ev.isComplete !== true) {
                out.push(status({ isProcessing: true, state: 'streaming', phase: 'first_token_received', message: 'Generating response...' }));
            }
            return out;
        }
        case 'agent_run_start':
            return [status({ isProcessing: true, state: 'initializing', phase: 'model_initialization', message: 'Initializing model and processing request...' })];
        case 'agent_run_end':
            return [status({ isProcessing: false, state: ev.status || 'idle' })];
        default:
            return [{ type: 'event', data: ev }];
    }
}

/** The agent-events a socket should see for these agent events (seq left out). */
export const bridgeAll = (events) => events.flatMap(bridgeMap);

/** Drops seq so that received events compare with bridgeAll(). */
export const withoutSeq = (list) => list.map(({ type, data }) => ({ type, data }));

/** The status send-query announces before the run (no seq: it is not an agent event). */
export const QUERY_PREPARATION = status({
    isProcessing: true,
    state: 'initializing',
    phase: 'query_preparation',
    message: 'Preparing to process your request...',
    estimatedTime: '5-15 seconds',
});

const DELTA_TYPES = new Set(['assistant_streaming_message', 'assistant_streaming_thinking_message', 'assistant_streaming_tool_call', 'final_answer_streaming']);

/** Entries that come from streaming deltas (never stored, so never replayed) or from no agent
 * event at all (the send-query announcement). */
export function isLiveOnly(e) {
    return (
        e.seq === undefined ||
        e.type === 'streaming_message' ||
        (e.type === 'agent-status' && e.data.phase === 'first_token_received') ||
        (e.type === 'event' && DELTA_TYPES.has(e.data.type))
    );
}

/** seq must never decrease along a socket's agent-events. */
export function assertSeqOrder(list) {
    let last = -1;
    for (const e of list) {
        if (e.seq === undefined) continue;
        assert.ok(e.seq >= last, `seq went back from ${last} to ${e.seq}`);
        last = e.seq;
    }
}

// --- raw WebSocket ---------------------------------------------------------------------------

/** One client frame; mask=false makes the (forbidden) unmasked kind. */
export function wsFrame(payload, { opcode = 1, fin = true, mask = true } = {}) {
    const data = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
    const len = data.length;
    const head = [(fin ? 0x80 : 0) | opcode];
    const m = mask ? 0x80 : 0;
    if (len < 126) head.push(m | len);
    else if (len < 65536) head.push(m | 126, len >> 8, len & 255);
    else {
        head.push(m | 127, 0, 0, 0, 0);
        head.push((len >>> 24) & 255, (len >>> 16) & 255, (len >>> 8) & 255, len & 255);
    }
    if (!mask) return Buffer.concat([Buffer.from(head), data]);
    const key = crypto.randomBytes(4);
    const body = Buffer.alloc(len);
    for (let i = 0; i < len; i++) body[i] = data[i] ^ key[i & 3];
    return Buffer.concat([Buffer.from(head), key, body]);
}

/** Parses server frames (unmasked) from a buffer: {frames: [{opcode, fin, payload}], rest}. */
export function parseFrames(buf) {
    const frames = [];
    let p = 0;
    for (;;) {
        if (buf.length - p < 2) break;
        const b0 = buf[p];
        const b1 = buf[p + 1];
        let len = b1 & 127;
        let off = p + 2;
        if (len === 126) {
            if (buf.length - p < 4) break;
            len = buf.readUInt16BE(p + 2);
            off = p + 4;
        } else if (len === 127) {
            if (buf.length - p < 10) break;
            len = Number(buf.readBigUInt64BE(p + 2));
            off = p + 10;
        }
        if (b1 & 0x80) throw new Error('server frame is masked');
        if (buf.length < off + len) break;
        frames.push({ opcode: b0 & 15, fin: !!(b0 & 0x80), payload: buf.subarray(off, off + len) });
        p = off + len;
    }
    return { frames, rest: buf.subarray(p) };
}

/**
 * Opens a raw WebSocket to path (e.g. "/socket.io/?EIO=4&transport=websocket"). Resolves after
 * the 101. Has send(buffer), frames (parsed so far, text payloads as strings in .text), waitFrame
 * (pred), waitClose(), closed, closeCode (from a close frame), destroy().
 */
export function rawWs(srv, path, timeoutMs = 5000) {
    return new Promise((resolve, reject) => {
        const sock = net.connect(srv.port, '127.0.0.1');
        const key = crypto.randomBytes(16).toString('base64');
        const c = { sock, frames: [], closed: false, closeCode: null, head: null };
        let buf = Buffer.alloc(0);
        const waiters = new Set();
        const notify = () => {
            for (const w of [...waiters]) w();
        };
        const t = setTimeout(() => reject(new Error('no 101 from the server')), timeoutMs);
        sock.on('error', () => {});
        sock.on('close', () => {
            c.closed = true;
            notify();
        });
        sock.on('data', (d) => {
            buf = Buffer.concat([buf, d]);
            if (c.head === null) {
                const i = buf.indexOf('\r\n\r\n');
                if (i < 0) return;
                c.head = buf.subarray(0, i).toString('latin1');
                buf = buf.subarray(i + 4);
                clearTimeout(t);
                if (!c.head.startsWith('HTTP/1.1 101')) {
                    reject(new Error(`no upgrade: ${c.head.split('\r\n')[0]}`));
                    sock.destroy();
                    return;
                }
                resolve(c);
            }
            const { frames, rest } = parseFrames(buf);
            buf = Buffer.from(rest);
            for (const f of frames) {
                if (f.opcode === 1) f.text = f.payload.toString('utf8');
                if (f.opcode === 8 && f.payload.length >= 2) c.closeCode = f.payload.readUInt16BE(0);
                c.frames.push(f);
            }
            notify();
        });
        c.send = (b) => sock.write(b);
        c.sendText = (s) => sock.write(wsFrame(s));
        c.waitFrame = (pred, ms = 5000) =>
            new Promise((res, rej) => {
                const check = () => {
                    const f = c.frames.find(pred);
                    if (f) {
                        waiters.delete(check);
                        clearTimeout(tt);
                        res(f);
                        return true;
                    }
                    if (c.closed) {
                        waiters.delete(check);
                        clearTimeout(tt);
                        rej(new Error(`closed before the frame came; got ${JSON.stringify(c.frames.map((x) => x.text ?? x.opcode))}`));
                        return true;
                    }
                    return false;
                };
                const tt = setTimeout(() => {
                    waiters.delete(check);
                    rej(new Error(`frame not received within ${ms} ms`));
                }, ms);
                if (!check()) waiters.add(check);
            });
        c.waitClose = (ms = 5000) =>
            new Promise((res, rej) => {
                const check = () => {
                    if (!c.closed) return false;
                    waiters.delete(check);
                    clearTimeout(tt);
                    res(true);
                    return true;
                };
                const tt = setTimeout(() => {
                    waiters.delete(check);
                    rej(new Error(`connection not closed within ${ms} ms`));
                }, ms);
                if (!check()) waiters.add(check);
            });
        c.destroy = () => sock.destroy();
        sock.write(
            `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${srv.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
                `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
        );
    });
}

/** A raw Engine.IO WebSocket session that has completed the Socket.IO CONNECT to "/". */
export async function rawSioSocket(srv) {
    const c = await rawWs(srv, '/socket.io/?EIO=4&transport=websocket');
    await c.waitFrame((f) => f.text && f.text.startsWith('0{'));
    c.sendText('40');
    await c.waitFrame((f) => f.text && f.text.startsWith('40{'));
    return c;
}
