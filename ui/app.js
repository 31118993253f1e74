// SPDX-License-Identifier: MIT
// The page: session sidebar, composer, run status, stop, workspace panel, theme. A session is
// shown by replaying its events from GET /sessions/events/stream, which then follows a run that
// is still going, so a reload in the middle of a run simply picks it up again.

import { api, readSse, BASE } from './api.js';
import { Conversation, formatMs, formatUsage } from './conversation.js';
import { buildQuery, hasAttachments, initAttachments, nameSession, summarize } from './attach.js';

const $ = (id) => document.getElementById(id);
const ui = {
    app: $('app'),
    list: $('session-list'),
    conv: $('conversation'),
    live: $('live'),
    empty: $('empty'),
    form: $('composer'),
    input: $('composer-input'),
    send: $('send'),
    stop: $('stop'),
    status: $('status'),
    statusText: $('status-text'),
    usage: $('session-usage'),
    title: $('session-title'),
    files: $('file-list'),
    filePath: $('file-path'),
    viewer: $('file-viewer'),
    viewerName: $('file-name'),
    viewerMeta: $('file-meta'),
    viewerBody: $('file-content'),
};

const state = {
    sessions: [],
    id: null, // current session
    running: false,
    lastId: 0, // SSE id of the last stored event applied (for resuming)
    stream: null, // AbortController of the open stream
    reader: null, // its body reader
    dir: '/',
};

const conv = new Conversation(ui.conv, ui.live, {
    onStatus: setStatus,
    onToolResult: () => refreshFilesSoon(),
    onApproval: (toolCallId, approved, reason) =>
        api.toolApproval(state.id, toolCallId, approved, reason || undefined),
    onUsage: (u) => {
        ui.usage.textContent = formatUsage(u);
    },
});

// ---- status ----

function setStatus(s, label) {
    state.running = s === 'running';
    ui.status.dataset.state = s;
    ui.statusText.textContent = label;
    ui.stop.hidden = !state.running;
    ui.send.disabled = state.running;
    ui.app.setAttribute('aria-busy', String(state.running));
    if (!state.running) refreshFilesSoon();
}

// ---- sessions ----

const sessionName = (s) => (s.metadata && typeof s.metadata.name === 'string' && s.metadata.name.trim()) || 'Untitled session';

async function loadSessions() {
    try {
        const { sessions } = await api.sessions();
        state.sessions = (sessions || []).slice().sort((a, b) => (b.updatedAt || b.createdAt || 0) - (a.updatedAt || a.createdAt || 0));
    } catch (e) {
        conv.localError(`Cannot list sessions: ${e.message}`);
    }
    renderSessions();
}

function renderSessions() {
    const items = state.sessions.map((s) => {
        const li = document.createElement('li');
        li.className = 'session';
        li.dataset.sessionId = s.id;
        const name = sessionName(s);
        const open = document.createElement('button');
        open.className = 'session-open';
        open.type = 'button';
        if (s.id === state.id) open.setAttribute('aria-current', 'true');
        const title = document.createElement('span');
        title.className = 'session-name';
        title.textContent = name;
        const when = document.createElement('span');
        when.className = 'session-time';
        const t = new Date(s.updatedAt || s.createdAt || 0);
        when.textContent = t.toLocaleString([], { dateStyle: 'short', timeStyle: 'short' });
        open.append(title, when);
        open.addEventListener('click', () => selectSession(s.id));
        const rename = iconButton('✎', `Rename session ${name}`, 'session-rename', () => startRename(li, s));
        const del = iconButton('✕', `Delete session ${name}`, 'session-delete', () => deleteSession(s));
        li.append(open, rename, del);
        return li;
    });
    ui.list.replaceChildren(...items);
    const cur = state.sessions.find((s) => s.id === state.id);
    ui.title.textContent = cur ? sessionName(cur) : 'No session';
    document.title = cur ? `${sessionName(cur)} · Agent TARS` : 'Agent TARS';
}

function iconButton(symbol, label, cls, onClick) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = `icon ${cls}`;
    b.setAttribute('aria-label', label);
    b.title = label;
    const i = document.createElement('span');
    i.setAttribute('aria-hidden', 'true');
    i.textContent = symbol;
    b.append(i);
    b.addEventListener('click', onClick);
    return b;
}

function startRename(li, s) {
    const input = document.createElement('input');
    input.className = 'session-rename-input';
    input.value = sessionName(s);
    input.setAttribute('aria-label', 'New session name');
    let done = false;
    const finish = async (save) => {
        if (done) return;
        done = true;
        const name = input.value.trim();
        if (save && name && name !== sessionName(s)) {
            try {
                await api.rename(s.id, name);
            } catch (e) {
                conv.localError(`Cannot rename the session: ${e.message}`);
            }
        }
        await loadSessions();
        const again = ui.list.querySelector(`[data-session-id="${CSS.escape(s.id)}"] .session-rename`);
        if (again) again.focus();
    };
    input.addEventListener('keydown', (e) => {
        if (e.key === 'Enter') finish(true);
        else if (e.key === 'Escape') finish(false);
    });
    input.addEventListener('blur', () => finish(true));
    li.replaceChildren(input);
    input.focus();
    input.select();
}

async function deleteSession(s) {
    if (!confirm(`Delete the session "${sessionName(s)}"? This cannot be undone.`)) return;
    try {
        await api.remove(s.id);
    } catch (e) {
        conv.localError(`Cannot delete the session: ${e.message}`);
        return;
    }
    if (s.id === state.id) {
        closeStream();
        clearTimeout(filesTimer);
        state.id = null;
        history.replaceState(null, '', location.pathname + location.search);
        conv.reset();
        setStatus('idle', 'Idle');
        showFiles([]);
    }
    await loadSessions();
    updateEmpty();
    $('new-session').focus();
}

async function newSession() {
    try {
        const r = await api.create();
        const id = r.sessionId || (r.session && r.session.id);
        await loadSessions();
        await selectSession(id);
        ui.input.focus();
        return id;
    } catch (e) {
        conv.localError(`Cannot create a session: ${e.message}`);
        return null;
    }
}

// ---- streams ----

function closeStream() {
    if (state.stream) state.stream.abort();
    state.stream = null;
}

/** Applies the events of one SSE response; true if it ended normally (not by our abort). */
async function consume(res, ctrl) {
    try {
        const onEvent = (ev, id) => {
            if (ctrl.signal.aborted) return;
            state.lastId = id;
            conv.apply(ev);
            updateEmpty();
        };
        state.lastId = await readSse(res, onEvent, state.lastId, (r) => (state.reader = r));
        return true;
    } catch (e) {
        if (ctrl.signal.aborted) return false;
        throw e;
    }
}

/**
 * Follows the session's events from state.lastId on (GET events/stream), reconnecting after a
 * dropped connection while a run is going on.
 */
async function follow(id, ctrl) {
    for (let attempt = 0; ; attempt++) {
        try {
            const res = await api.eventStream(id, state.lastId, ctrl.signal);
            if (!(await consume(res, ctrl))) return;
            if (!state.running) return;
            // closed while a run was going on (server restart, proxy timeout): ask and go on
            const st = await api.status(id);
            if (!st.status || !st.status.isProcessing) {
                setStatus('idle', 'Idle');
                return;
            }
        } catch (e) {
            if (ctrl.signal.aborted) return;
            if (e.status) {
                // an answer, not a network failure: the session is gone or the request is refused
                conv.localError(`Cannot open the session: ${e.message}`);
                setStatus('error', 'Error');
                return;
            }
            if (attempt >= 5) {
                conv.localError(`Lost the connection to the server: ${e.message}`);
                setStatus('error', 'Disconnected');
                return;
            }
        }
        await new Promise((r) => setTimeout(r, Math.min(4000, 250 * 2 ** attempt)));
        if (ctrl.signal.aborted || state.id !== id) return;
    }
}

async function selectSession(id) {
    if (!id) return;
    closeStream();
    state.id = id;
    state.lastId = 0;
    state.dir = '/';
    conv.reset();
    ui.usage.textContent = '';
    closeViewer();
    setStatus('idle', 'Idle');
    if (location.hash !== `#${id}`) history.replaceState(null, '', `${location.pathname}${location.search}#${id}`);
    renderSessions();
    closeDrawers();
    refreshFiles();
    const ctrl = new AbortController();
    state.stream = ctrl;
    await follow(id, ctrl);
    updateEmpty();
}

async function send(text) {
    if (state.running || (!text.trim() && !hasAttachments())) return;
    let id = state.id;
    if (!id) id = await newSession();
    if (!id) return;
    ui.input.value = '';
    autosize();
    closeStream();
    const ctrl = new AbortController();
    state.stream = ctrl;
    setStatus('running', 'Running');
    // the first query names an unnamed session (issue 15)
    const cur = state.sessions.find((s) => s.id === id);
    if (text.trim() && !(cur && cur.metadata && cur.metadata.name) && !ui.conv.querySelector('.msg-user')) {
        nameSession(id, text).then(loadSessions, (e) => conv.localError(`Cannot name the session: ${e.message}`));
    }
    let query;
    try {
        query = await buildQuery(id, text); // uploads attachments; images as image parts
    } catch (e) {
        conv.localError(`Cannot upload the files: ${e.message}`);
        setStatus('error', 'Error');
        return;
    }
    try {
        const res = await api.queryStream(id, query, ctrl.signal);
        await consume(res, ctrl);
    } catch (e) {
        if (ctrl.signal.aborted) return;
        if (e.status) {
            conv.localError(e.message);
            setStatus('error', 'Error');
            return;
        }
        // the connection dropped mid-run: resume from the last event seen
    }
    if (!ctrl.signal.aborted && state.running) await follow(id, ctrl);
    loadSessions(); // names and order may have changed
}

async function stop() {
    if (!state.id) return;
    ui.stop.disabled = true;
    try {
        await api.abort(state.id);
    } catch (e) {
        conv.localError(`Cannot stop the run: ${e.message}`);
    } finally {
        ui.stop.disabled = false;
    }
}

// ---- workspace ----

let filesTimer = null;
function refreshFilesSoon() {
    clearTimeout(filesTimer);
    filesTimer = setTimeout(refreshFiles, 300);
}

async function refreshFiles() {
    if (!state.id) return showFiles([]);
    const id = state.id;
    try {
        const r = await api.files(id, state.dir);
        if (id !== state.id) return;
        showFiles(r.files || []);
    } catch (e) {
        if (id !== state.id) return;
        if (state.dir !== '/') {
            state.dir = '/';
            return refreshFiles();
        }
        showFiles([], e.message);
    }
}

function formatSize(n) {
    if (typeof n !== 'number') return '';
    if (n < 1024) return `${n} B`;
    if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
    return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

function showFiles(files, error) {
    ui.filePath.textContent = state.dir;
    const items = [];
    if (state.dir !== '/') {
        const up = state.dir.replace(/\/[^/]+\/?$/, '') || '/';
        items.push(fileItem('..', 'Parent folder', true, () => openDir(up)));
    }
    for (const f of files) {
        const label = `${f.isDirectory ? 'Folder' : 'File'} ${f.name}${f.isDirectory ? '' : `, ${formatSize(f.size)}`}`;
        items.push(fileItem(f.name + (f.isDirectory ? '/' : ''), label, f.isDirectory, () => (f.isDirectory ? openDir(f.path) : openFile(f)), f));
    }
    if (!items.length) {
        const li = document.createElement('li');
        li.className = 'muted';
        li.textContent = error ? `Cannot list files: ${error}` : state.id ? 'No files yet' : 'No session';
        items.push(li);
    }
    ui.files.replaceChildren(...items);
}

function fileItem(text, label, isDir, onClick, f) {
    const li = document.createElement('li');
    const b = document.createElement('button');
    b.type = 'button';
    b.className = `file ${isDir ? 'dir' : ''}`;
    b.setAttribute('aria-label', label);
    const name = document.createElement('span');
    name.className = 'file-name';
    name.textContent = text;
    b.append(name);
    if (f && !f.isDirectory) {
        const size = document.createElement('span');
        size.className = 'file-size';
        size.textContent = formatSize(f.size);
        b.append(size);
    }
    b.addEventListener('click', onClick);
    li.append(b);
    return li;
}

function openDir(p) {
    state.dir = p;
    refreshFiles();
}

async function openFile(f) {
    ui.viewer.hidden = false;
    ui.viewerName.textContent = f.name;
    ui.viewerMeta.textContent = `${formatSize(f.size)} · modified ${new Date(f.modified).toLocaleString()}`;
    ui.viewerBody.textContent = 'Loading…';
    try {
        const r = await api.files(state.id, f.path, true);
        if (typeof r.content !== 'string') {
            ui.viewerBody.textContent = '(the server did not send the file contents)';
        } else {
            ui.viewerBody.textContent = r.content + (r.truncated ? '\n… (truncated)' : '');
        }
    } catch (e) {
        ui.viewerBody.textContent = `Cannot read the file: ${e.message}`;
    }
    $('close-viewer').focus();
}

function closeViewer() {
    ui.viewer.hidden = true;
    ui.viewerBody.textContent = '';
}

// ---- layout, theme, composer ----

function updateEmpty() {
    ui.empty.hidden = !conv.empty;
    ui.empty.textContent = state.id ? 'Send a message to start.' : 'Create a session or just type a message to start.';
}

function toggle(cls, button, force) {
    const on = ui.app.classList.toggle(cls, force);
    button.setAttribute('aria-expanded', String(on));
    return on;
}

function closeDrawers() {
    if (matchMedia('(max-width: 760px)').matches) toggle('sidebar-open', $('toggle-sidebar'), false);
}

function applyTheme(theme) {
    document.documentElement.dataset.theme = theme;
    const dark = theme === 'dark';
    const b = $('toggle-theme');
    b.setAttribute('aria-pressed', String(dark));
    b.setAttribute('aria-label', 'Dark theme');
}

function initTheme() {
    let saved = null;
    try {
        saved = localStorage.getItem('tars-theme');
    } catch {
        /* storage disabled */
    }
    applyTheme(saved || (matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light'));
    $('toggle-theme').addEventListener('click', () => {
        const next = document.documentElement.dataset.theme === 'dark' ? 'light' : 'dark';
        applyTheme(next);
        try {
            localStorage.setItem('tars-theme', next);
        } catch {
            /* storage disabled */
        }
    });
}

function autosize() {
    ui.input.style.height = 'auto';
    ui.input.style.height = `${Math.min(ui.input.scrollHeight, 240)}px`;
}

function init() {
    initTheme();
    ui.app.dataset.base = BASE;
    ui.form.addEventListener('submit', (e) => {
        e.preventDefault();
        send(ui.input.value);
    });
    ui.input.addEventListener('keydown', (e) => {
        if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
            e.preventDefault();
            send(ui.input.value);
        }
    });
    ui.input.addEventListener('input', autosize);
    ui.stop.addEventListener('click', stop);
    $('new-session').addEventListener('click', newSession);
    initAttachments({ button: $('attach'), picker: $('attach-input'), list: $('attachments'), dropZone: ui.form, input: ui.input });
    $('summarize').addEventListener('click', async () => {
        if (!state.id) return;
        try {
            await summarize(state.id, ui.conv);
            await loadSessions();
        } catch (e) {
            conv.localError(`Cannot summarize: ${e.message}`);
        }
    });
    $('refresh-files').addEventListener('click', refreshFiles);
    $('close-viewer').addEventListener('click', closeViewer);
    $('toggle-sidebar').addEventListener('click', () => toggle('sidebar-open', $('toggle-sidebar')));
    $('toggle-files').addEventListener('click', () => toggle('files-open', $('toggle-files')));
    document.addEventListener('keydown', (e) => {
        if (e.key !== 'Escape') return;
        if (!ui.viewer.hidden) closeViewer();
        else if (ui.app.classList.contains('sidebar-open')) toggle('sidebar-open', $('toggle-sidebar'), false);
    });
    toggle('files-open', $('toggle-files'), matchMedia('(min-width: 1100px)').matches);
    window.addEventListener('hashchange', () => {
        const id = decodeURIComponent(location.hash.slice(1));
        if (id && id !== state.id) selectSession(id);
    });
    updateEmpty();
    loadSessions().then(() => {
        const id = decodeURIComponent(location.hash.slice(1));
        if (id) selectSession(id);
    });
}

// For the console and the tests: dropStream() ends the current response as a network drop would.
window.tarsUi = { state, formatMs, dropStream: () => state.reader && state.reader.cancel() };
init();
import('./models.js').then((m) => m.initModelPicker(state)); // the model picker (issue 18)
