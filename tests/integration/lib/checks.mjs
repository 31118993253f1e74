// SPDX-License-Identifier: MIT
// Shared assertions for the integration tests: SSE framing and id rules, common event fields,
// and the response headers of a streaming answer.

import assert from 'node:assert/strict';
import { MESSAGE_ID_RE, STREAMING_TYPES, UUID_V4_RE, ofType } from './server.mjs';

/**
 * Checks the id/data framing of a parsed stream: no framing errors, integer ids that never go
 * down, stored events numbered consecutively (starting after prevStoredId when given), streaming
 * deltas carrying the id of the last stored event before them. Returns the last stored id.
 */
export function assertFraming(out, { prevStoredId = null } = {}) {
    assert.deepEqual(out.errors, [], `SSE framing errors:\n${out.errors.join('\n')}\nraw start: ${out.raw.slice(0, 400)}`);
    assert.ok(out.frames.length > 0, 'stream has no frames');
    let last = prevStoredId;
    let lastAny = prevStoredId;
    for (const f of out.frames) {
        assert.match(f.id, /^\d+$/, `id ${JSON.stringify(f.id)} is not an integer`);
        const n = Number(f.id);
        if (lastAny !== null) assert.ok(n >= lastAny, `id went down: ${lastAny} -> ${n}`);
        lastAny = n;
        if (STREAMING_TYPES.has(f.event.type)) {
            if (last !== null) assert.equal(n, last, `streaming delta ${f.event.type} has id ${n}, last stored event had ${last}`);
        } else {
            if (last !== null) assert.equal(n, last + 1, `stored event ${f.event.type} has id ${n}, expected ${last + 1}`);
            last = n;
        }
    }
    return last;
}

/** Every event: keys id (uuid v4), type, timestamp (ms) first. */
export function assertEventBasics(events) {
    const now = Date.now();
    for (const e of events) {
        assert.equal(typeof e, 'object');
        assert.deepEqual(Object.keys(e).slice(0, 3), ['id', 'type', 'timestamp'], `key order of ${JSON.stringify(e).slice(0, 200)}`);
        assert.match(e.id, UUID_V4_RE, `event id ${e.id}`);
        assert.equal(typeof e.timestamp, 'number');
        assert.ok(Number.isInteger(e.timestamp), 'timestamp is an integer');
        assert.ok(e.timestamp > now - 600000 && e.timestamp <= now + 1000, `timestamp ${e.timestamp} is not a current ms time`);
    }
    const ids = new Set(events.map((e) => e.id));
    assert.equal(ids.size, events.length, 'event ids are unique');
}

export function assertStreamHeaders(out) {
    assert.equal(out.status, 200);
    assert.match(out.headers.get('content-type') || '', /^text\/event-stream/);
    assert.equal(out.headers.get('cache-control'), 'no-cache');
    assert.equal(out.headers.get('x-content-type-options'), 'nosniff');
}

/** All deltas and the final message of one LLM call share a msg_ id; returns the id. */
export function assertOneMessageId(events) {
    const ids = new Set(events.map((e) => e.messageId));
    assert.equal(ids.size, 1, `expected one messageId, got ${[...ids].join(', ')}`);
    const [id] = ids;
    assert.match(id, MESSAGE_ID_RE);
    return id;
}

/** Common assertions for a run that ended normally; returns agent_run_end. */
export function assertRunEnd(events, sessionId, iterations) {
    const last = events[events.length - 1];
    assert.equal(last.type, 'agent_run_end', `last event is ${last.type}: ${JSON.stringify(last)}`);
    assert.equal(last.sessionId, sessionId);
    assert.equal(last.status, 'idle');
    if (iterations !== undefined) assert.equal(last.iterations, iterations);
    assert.equal(typeof last.elapsedMs, 'number');
    assert.ok(last.elapsedMs >= 0);
    return last;
}

/** The start of every streamed run: user_message then agent_run_start. */
export function assertRunStart(events, sessionId, query, model = 'fake-model') {
    assert.equal(events[0].type, 'user_message');
    assert.equal(events[0].content, query);
    assert.equal(events[1].type, 'agent_run_start');
    assert.equal(events[1].sessionId, sessionId);
    assert.equal(typeof events[1].runOptions, 'object');
    assert.ok(events[1].runOptions !== null);
    assert.equal(events[1].model, model);
    assert.equal(typeof events[1].provider, 'string');
}

/** Concatenated assistant_streaming_message deltas between two indexes. */
export function joinDeltas(events, type = 'assistant_streaming_message') {
    return ofType(events, type)
        .map((e) => e.content)
        .join('');
}
