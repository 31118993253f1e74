// SPDX-License-Identifier: MIT
// Turns agent events (anchor-api.md §4.2) into the conversation view: user messages, streamed
// Markdown answers, collapsible thinking, one card per tool call, system notices. Every event is
// applied at most once (by its id), so a resumed stream can never duplicate anything. All model
// and tool text goes through textContent or the Markdown renderer, never through HTML parsing.

import { renderMarkdown } from './markdown.js';

const RESULT_MAX_CHARS = 20000;

function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
}

/** Text of a message content: a string, or OpenAI content parts (images become a marker). */
export function contentText(c) {
    if (typeof c === 'string') return c;
    if (Array.isArray(c)) {
        return c
            .map((p) => {
                if (p && typeof p.text === 'string') return p.text;
                if (p && p.type === 'image_url') return '[image]';
                return p == null ? '' : JSON.stringify(p);
            })
            .join('\n');
    }
    if (c == null) return '';
    return JSON.stringify(c, null, 2);
}

function clip(s) {
    return s.length > RESULT_MAX_CHARS ? `${s.slice(0, RESULT_MAX_CHARS)}\n… (${s.length - RESULT_MAX_CHARS} more characters)` : s;
}

export function formatMs(ms) {
    if (typeof ms !== 'number' || !Number.isFinite(ms)) return '';
    return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
}

function pretty(v) {
    if (typeof v === 'string') {
        try {
            return JSON.stringify(JSON.parse(v), null, 2);
        } catch {
            return v;
        }
    }
    return JSON.stringify(v ?? {}, null, 2);
}

/** "1,234 tokens (1,000 in, 234 out) · $0.0012", "~" when estimated. */
export function formatUsage(u) {
    if (!u || typeof u.totalTokens !== 'number') return '';
    const n = (v) => Number(v || 0).toLocaleString('en-US');
    let s = `${u.estimated ? '~' : ''}${n(u.totalTokens)} tokens (${n(u.promptTokens)} in, ${n(u.completionTokens)} out)`;
    if (typeof u.costUSD === 'number') s += ` · $${u.costUSD.toFixed(4)}`;
    return s;
}

export class Conversation {
    /**
     * root: the element that holds the messages; announcer: an aria-live region for screen
     * readers; hooks: { onStatus(state, label), onToolResult() }.
     */
    constructor(root, announcer, hooks = {}) {
        this.root = root;
        this.announcer = announcer;
        this.hooks = hooks;
        this.reset();
    }

    reset() {
        this.seen = new Set();
        this.messages = new Map(); // messageId -> { el, body, text }
        this.thinking = new Map(); // messageId -> { el, body, summary, text }
        this.tools = new Map(); // toolCallId -> card parts
        this.usage = null; // the session's token usage, summed over the answers seen
        this.anon = 0;
        this.openKey = null; // the assistant message currently streaming
        this.pending = new Set();
        this.speech = '';
        clearTimeout(this.speechTimer);
        this.root.replaceChildren();
        this.announcer.replaceChildren();
    }

    get empty() {
        return this.root.childElementCount === 0;
    }

    append(node) {
        const stick = this.root.scrollHeight - this.root.scrollTop - this.root.clientHeight < 80;
        this.root.append(node);
        if (stick) this.root.scrollTop = this.root.scrollHeight;
    }

    scrollIfNear() {
        if (this.root.scrollHeight - this.root.scrollTop - this.root.clientHeight < 160) {
            this.root.scrollTop = this.root.scrollHeight;
        }
    }

    /** Applies one event; returns false if it was seen before. */
    apply(ev) {
        if (ev.id) {
            if (this.seen.has(ev.id)) return false;
            this.seen.add(ev.id);
        }
        const h = this[`on_${ev.type}`];
        if (h) h.call(this, ev);
        return true;
    }

    /** An error that happened in the page (a failed request), shown like a system error. */
    localError(message) {
        this.notice('error', message);
    }

    notice(level, message, details) {
        const box = el('div', `notice notice-${level}`);
        if (level === 'error') box.setAttribute('role', 'alert');
        box.append(el('strong', null, level === 'error' ? 'Error: ' : level === 'warning' ? 'Warning: ' : ''));
        box.append(document.createTextNode(String(message ?? '')));
        if (details && typeof details === 'object' && Object.keys(details).length) {
            const d = el('details');
            d.append(el('summary', null, 'Details'), el('pre', null, clip(pretty(details))));
            box.append(d);
        }
        this.append(box);
    }

    // ---- assistant text ----

    messageKey(ev) {
        if (ev.messageId) return ev.messageId;
        if (this.openKey && !this.openKey.startsWith('msg_')) return this.openKey;
        return `anon-${++this.anon}`;
    }

    message(key) {
        let m = this.messages.get(key);
        if (!m) {
            const wrap = el('article', 'msg msg-assistant streaming');
            wrap.dataset.messageId = key;
            wrap.setAttribute('aria-label', 'Assistant');
            const body = el('div', 'md');
            wrap.append(body);
            m = { el: wrap, body, text: '' };
            this.messages.set(key, m);
            this.append(wrap);
        }
        return m;
    }

    schedule(m) {
        if (this.pending.has(m)) return;
        this.pending.add(m);
        setTimeout(() => {
            this.pending.delete(m);
            renderMarkdown(m.body, m.text);
            this.scrollIfNear();
        }, 30);
    }

    on_assistant_streaming_message(ev) {
        const key = this.messageKey(ev);
        this.openKey = key;
        if (!ev.content) return;
        const m = this.message(key);
        m.text += ev.content;
        this.schedule(m);
        this.say(ev.content);
    }

    on_final_answer_streaming(ev) {
        this.on_assistant_streaming_message(ev);
    }

    on_assistant_message(ev) {
        if (ev.usage) this.addUsage(ev.usage);
        const key = this.messageKey(ev);
        const open = this.openKey;
        this.openKey = null;
        const text = typeof ev.content === 'string' ? ev.content : contentText(ev.content);
        let m = this.messages.get(key);
        if (!m && open && open !== key && this.messages.has(open)) {
            // the partial bubble of this answer under another key (chunks without a messageId,
            // or a reload in the middle): it becomes the final message, never stays beside it
            m = this.messages.get(open);
            this.messages.delete(open);
            this.messages.set(key, m);
            m.el.dataset.messageId = key;
        }
        if (!m && !text) return; // a pure tool-call turn
        m = m || this.message(key);
        m.text = text;
        m.el.classList.remove('streaming');
        if (ev.finishReason === 'abort') m.el.classList.add('aborted');
        if (ev.finishReason === 'error') m.el.classList.add('failed');
        renderMarkdown(m.body, m.text);
        if (ev.usage) {
            // beside the message, not in it: the message holds the model's text only
            if (!m.usage) m.el.after((m.usage = el('div', 'usage')));
            m.usage.textContent = formatUsage(ev.usage);
        }
        this.flushSpeech();
        this.scrollIfNear();
    }

    on_final_answer(ev) {
        this.on_assistant_message(ev);
    }

    // ---- thinking ----

    think(key) {
        let t = this.thinking.get(key);
        if (!t) {
            const d = el('details', 'thinking streaming');
            d.dataset.messageId = key;
            const summary = el('summary', null, 'Thinking…');
            const body = el('div', 'thinking-body');
            d.append(summary, body);
            t = { el: d, body, summary, text: '' };
            this.thinking.set(key, t);
            // before the answer of the same LLM call when that already exists
            const m = this.messages.get(key);
            if (m) m.el.before(d);
            else this.append(d);
        }
        return t;
    }

    on_assistant_streaming_thinking_message(ev) {
        const t = this.think(ev.messageId || 'thinking');
        t.text += ev.content || '';
        t.body.textContent = t.text;
    }

    on_assistant_thinking_message(ev) {
        const t = this.think(ev.messageId || `thinking-${ev.id}`);
        t.text = contentText(ev.content);
        t.body.textContent = t.text;
        t.el.classList.remove('streaming');
        const took = formatMs(ev.thinkingDurationMs);
        t.summary.textContent = took ? `Thought for ${took}` : 'Thinking';
    }

    // ---- tools ----

    card(id, name) {
        let c = this.tools.get(id);
        if (!c) {
            const card = el('section', 'tool-card running');
            card.dataset.toolCallId = id;
            const head = el('header', 'tool-head');
            const title = el('span', 'tool-name');
            const state = el('span', 'tool-state', 'running');
            const time = el('span', 'tool-time');
            head.append(el('span', 'tool-icon', '⚙'), title, state, time);
            head.firstChild.setAttribute('aria-hidden', 'true');
            const args = el('details', 'tool-args');
            const argsPre = el('pre');
            args.append(el('summary', null, 'Arguments'), argsPre);
            args.open = true;
            const result = el('details', 'tool-result');
            const resultPre = el('pre');
            result.append(el('summary', null, 'Result'), resultPre);
            result.hidden = true;
            result.open = true;
            card.append(head, args, result);
            c = { el: card, title, state, time, argsPre, argsText: '', result, resultPre, name: '' };
            this.tools.set(id, c);
            this.append(card);
        }
        if (name && c.name !== name) {
            c.name = name;
            c.title.textContent = name;
            c.el.setAttribute('aria-label', `Tool call ${name}`);
        }
        return c;
    }

    on_assistant_streaming_tool_call(ev) {
        const c = this.card(ev.toolCallId, ev.toolName);
        if (c.final) return;
        c.argsText += ev.arguments || '';
        c.argsPre.textContent = c.argsText;
        if (!ev.isComplete) c.state.textContent = 'preparing';
    }

    on_tool_call(ev) {
        const c = this.card(ev.toolCallId, ev.name);
        c.final = true;
        c.argsPre.textContent = clip(pretty(ev.arguments));
        c.state.textContent = 'running';
    }

    on_tool_result(ev) {
        const c = this.card(ev.toolCallId, ev.name);
        c.el.classList.remove('running');
        const failed = typeof ev.error === 'string' && ev.error !== '';
        c.el.classList.add(failed ? 'failed' : 'done');
        c.state.textContent = failed ? 'error' : 'done';
        c.time.textContent = formatMs(ev.elapsedMs);
        if (c.time.textContent) c.time.setAttribute('aria-label', `took ${c.time.textContent}`);
        c.result.hidden = false;
        c.result.firstChild.textContent = failed ? 'Error' : 'Result';
        c.resultPre.textContent = clip(failed ? ev.error : contentText(ev.content));
        if (this.hooks.onToolResult) this.hooks.onToolResult(ev);
    }

    // ---- approvals ----

    on_tool_approval_request(ev) {
        const c = this.card(ev.toolCallId, ev.name);
        c.final = true;
        c.argsPre.textContent = clip(pretty(ev.arguments));
        c.state.textContent = 'awaiting approval';
        c.el.classList.add('awaiting');
        const box = el('div', 'approval');
        box.setAttribute('role', 'group');
        box.setAttribute('aria-label', `Approve ${ev.name}?`);
        const reason = el('input', 'approval-reason');
        reason.type = 'text';
        reason.placeholder = 'Reason (optional)';
        reason.setAttribute('aria-label', 'Reason');
        const yes = el('button', 'primary approve', 'Approve');
        const no = el('button', 'danger deny', 'Deny');
        yes.type = no.type = 'button';
        const decide = async (approved) => {
            yes.disabled = no.disabled = true;
            try {
                if (this.hooks.onApproval) await this.hooks.onApproval(ev.toolCallId, approved, reason.value);
            } catch (e) {
                yes.disabled = no.disabled = false;
                this.localError(`Cannot send the decision: ${e.message}`);
            }
        };
        yes.addEventListener('click', () => decide(true));
        no.addEventListener('click', () => decide(false));
        box.append(el('span', null, 'Run this tool?'), reason, yes, no);
        c.approval = box;
        c.el.append(box);
    }

    on_tool_approval_result(ev) {
        const c = this.card(ev.toolCallId);
        c.el.classList.remove('awaiting');
        if (c.approval) c.approval.remove();
        c.approval = null;
        const verdict = ev.approved ? 'approved' : `denied${ev.reason ? `: ${ev.reason}` : ''}`;
        c.state.textContent = ev.approved ? 'approved' : 'denied';
        c.el.append(el('div', `approval-result ${ev.approved ? 'ok' : 'no'}`, `${verdict} (${ev.by || 'user'})`));
    }

    addUsage(u) {
        const t = (this.usage = this.usage || { promptTokens: 0, completionTokens: 0, totalTokens: 0 });
        for (const k of ['promptTokens', 'completionTokens', 'totalTokens']) t[k] += Number(u[k] || 0);
        if (typeof u.costUSD === 'number') t.costUSD = (t.costUSD || 0) + u.costUSD;
        if (u.estimated) t.estimated = true;
        if (this.hooks.onUsage) this.hooks.onUsage(t);
    }

    // ---- the rest ----

    on_user_message(ev) {
        const m = el('article', 'msg msg-user');
        m.setAttribute('aria-label', 'You');
        m.append(el('div', 'user-text', contentText(ev.content)));
        this.append(m);
        m.scrollIntoView({ block: 'nearest' });
    }

    on_environment_input(ev) {
        const d = el('details', 'env-input');
        d.append(el('summary', null, ev.description || 'Environment input'), el('pre', null, clip(contentText(ev.content))));
        this.append(d);
    }

    on_system(ev) {
        this.notice(ev.level || 'info', ev.message, ev.details);
        if (ev.level === 'error') this.status('error', 'Error');
    }

    on_agent_run_start() {
        this.announcer.replaceChildren();
        this.status('running', 'Running');
    }

    on_agent_run_end(ev) {
        for (const m of this.messages.values()) m.el.classList.remove('streaming');
        for (const t of this.thinking.values()) t.el.classList.remove('streaming');
        for (const c of this.tools.values()) {
            if (c.el.classList.contains('running')) {
                c.el.classList.replace('running', 'failed');
                c.state.textContent = 'no result';
            }
        }
        this.openKey = null;
        this.flushSpeech();
        if (ev.status === 'aborted') this.status('stopped', 'Stopped');
        else if (ev.status === 'error') this.status('error', 'Error');
        else this.status('idle', 'Idle');
    }

    status(state, label) {
        if (this.hooks.onStatus) this.hooks.onStatus(state, label);
    }

    // ---- screen readers: the streaming answer, a sentence at a time ----

    say(text) {
        this.speech += text;
        if (/[.!?:\n]\s*$/.test(this.speech) || this.speech.length > 200) this.flushSpeech();
        else {
            clearTimeout(this.speechTimer);
            this.speechTimer = setTimeout(() => this.flushSpeech(), 1500);
        }
    }

    flushSpeech() {
        clearTimeout(this.speechTimer);
        const s = this.speech.trim();
        this.speech = '';
        if (!s) return;
        this.announcer.append(el('span', null, `${s} `));
        while (this.announcer.childElementCount > 30) this.announcer.firstElementChild.remove();
    }
}
