// SPDX-License-Identifier: MIT
// Attachments, session names and the summary (issue 15). Files come from the attach button, a
// drop on the composer or a paste; images go to the model as image parts of a multimodal query
// ([{type:'text'}, {type:'image_url', image_url:{url:'data:...'}}]), other files are uploaded to
// the session's workspace (POST /files/upload) and their paths appended to the message, as the
// original's UI does. A session is named after its first query (first 50 characters) and can be
// renamed from a summary of its conversation (POST /sessions/generate-summary).

import { apiUrl, postJson } from './api.js';

/** Images above this go to the workspace instead: a data URL must fit in the JSON body cap. */
export const MAX_INLINE_IMAGE = 700 * 1024;
const MAX_FILES = 10;

const pending = []; // { file, id }
let chips = null;
let onChange = () => {};
let nextId = 1;

function render() {
    const items = pending.map((p) => {
        const li = document.createElement('li');
        li.className = 'attachment';
        const name = document.createElement('span');
        name.className = 'attachment-name';
        name.textContent = `${isInlineImage(p.file) ? '🖼 ' : ''}${p.file.name || 'pasted image'}`;
        const rm = document.createElement('button');
        rm.type = 'button';
        rm.className = 'icon attachment-remove';
        rm.setAttribute('aria-label', `Remove ${p.file.name || 'attachment'}`);
        rm.textContent = '✕';
        rm.addEventListener('click', () => {
            pending.splice(pending.indexOf(p), 1);
            render();
        });
        li.append(name, rm);
        return li;
    });
    chips.replaceChildren(...items);
    chips.hidden = items.length === 0;
    onChange();
}

export function addFiles(files) {
    for (const f of files) {
        if (pending.length >= MAX_FILES) break;
        pending.push({ file: f, id: nextId++ });
    }
    render();
}

export const hasAttachments = () => pending.length > 0;

const isInlineImage = (f) => /^image\/(png|jpeg|gif|webp)$/.test(f.type) && f.size <= MAX_INLINE_IMAGE;

function dataUrl(file) {
    return new Promise((resolve, reject) => {
        const r = new FileReader();
        r.onload = () => resolve(r.result);
        r.onerror = () => reject(r.error || new Error('cannot read the file'));
        r.readAsDataURL(file);
    });
}

/** POST /files/upload; resolves with the stored files ({name, storedName, relativePath, ...}). */
export async function upload(sessionId, files) {
    const form = new FormData();
    form.append('sessionId', sessionId);
    for (const f of files) form.append('files', f, f.name || 'file');
    const res = await fetch(apiUrl('/files/upload', { sessionId }), { method: 'POST', body: form });
    let j = null;
    try {
        j = await res.json();
    } catch {
        /* not JSON */
    }
    if (!res.ok) throw new Error((j && (j.message || j.error)) || `${res.status} ${res.statusText}`);
    return j.files || [];
}

/**
 * The query for `text` with the pending attachments (which are cleared): the text itself when
 * there are none, else the text with the uploaded files' paths, plus image parts if any.
 */
export async function buildQuery(sessionId, text) {
    if (!pending.length) return text;
    const files = pending.map((p) => p.file);
    const images = files.filter(isInlineImage);
    const others = files.filter((f) => !isInlineImage(f));
    let body = text;
    if (others.length) {
        const stored = await upload(sessionId, others);
        const list = stored.map((f) => `- ${f.relativePath}`).join('\n');
        body = `${text}${text ? '\n\n' : ''}Attached files (in the workspace):\n${list}`;
    }
    pending.length = 0;
    render();
    if (!images.length) return body;
    const parts = [{ type: 'text', text: body }];
    for (const img of images) parts.push({ type: 'image_url', image_url: { url: await dataUrl(img) } });
    return parts;
}

/** Names a session after its first query, as the original does (first 50 characters). */
export function nameFromQuery(text) {
    return String(text).replace(/\s+/g, ' ').trim().slice(0, 50);
}

export async function nameSession(sessionId, text) {
    const name = nameFromQuery(text);
    if (name) await postJson('/sessions/update', { sessionId, metadata: { name } });
}

/** Asks the model for a title of the conversation (its user and assistant texts) and keeps it. */
export async function summarize(sessionId, root) {
    const messages = [...root.querySelectorAll('.msg-user, .msg-assistant')]
        .map((m) => ({ role: m.classList.contains('msg-user') ? 'user' : 'assistant', content: m.innerText.trim() }))
        .filter((m) => m.content);
    if (!messages.length) throw new Error('nothing to summarize yet');
    const r = await postJson('/sessions/generate-summary', { sessionId, messages });
    const name = String(r.summary || '').trim().slice(0, 100);
    if (name) await postJson('/sessions/update', { sessionId, metadata: { name } });
    return name;
}

/**
 * Wires the attach button, its file input, drops on `dropZone` and pastes into `input`.
 * changed() runs whenever the list changes.
 */
export function initAttachments({ button, picker, list, dropZone, input, changed }) {
    chips = list;
    onChange = changed || onChange;
    button.addEventListener('click', () => picker.click());
    picker.addEventListener('change', () => {
        addFiles([...picker.files]);
        picker.value = '';
    });
    dropZone.addEventListener('dragover', (e) => {
        if (![...(e.dataTransfer?.types || [])].includes('Files')) return;
        e.preventDefault();
        dropZone.classList.add('drop-target');
    });
    dropZone.addEventListener('dragleave', () => dropZone.classList.remove('drop-target'));
    dropZone.addEventListener('drop', (e) => {
        dropZone.classList.remove('drop-target');
        if (!e.dataTransfer?.files?.length) return;
        e.preventDefault();
        addFiles([...e.dataTransfer.files]);
    });
    input.addEventListener('paste', (e) => {
        const files = [...(e.clipboardData?.files || [])];
        if (!files.length) return;
        e.preventDefault();
        addFiles(files);
    });
    render();
}
