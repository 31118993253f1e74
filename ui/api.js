// SPDX-License-Identifier: MIT
// The server's /api/v1 routes as seen from the page, and an SSE reader over fetch(). The API base
// comes from where the page is served: the server writes its base path into <base href>.

/** "" at the root, or the configured base path such as "/agents". */
export const BASE = new URL('.', document.baseURI).pathname.replace(/\/+$/, '');

export function apiUrl(path, params) {
    const u = new URL(`${BASE}/api/v1${path}`, location.origin);
    for (const [k, v] of Object.entries(params || {})) if (v !== undefined && v !== null) u.searchParams.set(k, v);
    return u.pathname + u.search;
}

/** An Error carrying the server's message ({error, message}) and the HTTP status. */
async function httpError(res) {
    let msg = `${res.status} ${res.statusText}`;
    try {
        const j = await res.json();
        const e = j && j.error;
        if (typeof e === 'string') msg = j.message ? `${e}: ${j.message}` : e;
        else if (e && typeof e.message === 'string') msg = e.message;
    } catch {
        /* not JSON */
    }
    const err = new Error(msg);
    err.status = res.status;
    return err;
}

export async function getJson(path, params, signal) {
    const res = await fetch(apiUrl(path, params), { signal, headers: { accept: 'application/json' } });
    if (!res.ok) throw await httpError(res);
    return res.json();
}

export async function postJson(path, body, signal) {
    const res = await fetch(apiUrl(path), {
        method: 'POST',
        signal,
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify(body || {}),
    });
    if (!res.ok) throw await httpError(res);
    return res.json();
}

/**
 * Reads an SSE body (WHATWG parsing rules: lines end in CRLF, LF or CR; a blank line dispatches;
 * "id:" sets the last event id, which persists across events) and calls onEvent(json, lastId) for
 * each data frame. The server sends "id: n" either in the data frame's block or in a block of its
 * own just before it; both end up as the id of the next dispatched event. Resolves at the end of
 * the body with the last id seen. onReader(reader), if given, receives the stream reader (its
 * cancel() ends the body early, like a dropped connection).
 */
export async function readSse(res, onEvent, lastId = 0, onReader = null) {
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    if (onReader) onReader(reader);
    let buf = '';
    let data = null;
    const line = (l) => {
        if (l === '') {
            if (data !== null) {
                let ev = null;
                try {
                    ev = JSON.parse(data);
                } catch {
                    /* not an event */
                }
                if (ev && typeof ev === 'object') onEvent(ev, lastId);
            }
            data = null;
            return;
        }
        if (l.startsWith(':')) return;
        const colon = l.indexOf(':');
        const field = colon < 0 ? l : l.slice(0, colon);
        let value = colon < 0 ? '' : l.slice(colon + 1);
        if (value.startsWith(' ')) value = value.slice(1);
        if (field === 'data') data = data === null ? value : `${data}\n${value}`;
        else if (field === 'id' && /^\d+$/.test(value)) lastId = Number(value);
    };
    for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let m;
        const re = /\r\n|\r(?!$)|\n/g;
        let start = 0;
        while ((m = re.exec(buf))) {
            line(buf.slice(start, m.index));
            start = m.index + m[0].length;
        }
        buf = buf.slice(start);
    }
    if (buf) line(buf.replace(/\r$/, ''));
    line('');
    return lastId;
}

export const api = {
    sessions: () => getJson('/sessions'),
    create: () => postJson('/sessions/create', {}),
    rename: (sessionId, name) => postJson('/sessions/update', { sessionId, metadata: { name } }),
    remove: (sessionId) => postJson('/sessions/delete', { sessionId }),
    status: (sessionId) => getJson('/sessions/status', { sessionId }),
    abort: (sessionId) => postJson('/sessions/abort', { sessionId }),
    toolApproval: (sessionId, toolCallId, approved, reason) =>
        postJson('/sessions/tool-approval', { sessionId, toolCallId, approved, reason }),
    files: (sessionId, path, content) =>
        getJson('/sessions/workspace/files', { sessionId, path, content: content ? 'true' : undefined }),

    /** POST /sessions/query/stream; resolves with the response (check ok) for readSse. */
    async queryStream(sessionId, query, signal) {
        const res = await fetch(apiUrl('/sessions/query/stream'), {
            method: 'POST',
            signal,
            headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
            body: JSON.stringify({ sessionId, query }),
        });
        if (!res.ok) throw await httpError(res);
        return res;
    },

    /** GET /sessions/events/stream: stored events after `after`, then the live run if any. */
    async eventStream(sessionId, after, signal) {
        const res = await fetch(apiUrl('/sessions/events/stream', { sessionId, after }), {
            signal,
            headers: { accept: 'text/event-stream' },
        });
        if (!res.ok) throw await httpError(res);
        return res;
    },
};
