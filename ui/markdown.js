// SPDX-License-Identifier: MIT
// A small, safe Markdown renderer: it builds DOM nodes with createElement and text nodes only, so
// model output can never become HTML or script. Blocks: headings, paragraphs, fenced and indented
// code, block quotes, nested lists, tables, rules. Inline: code, strong, em, strike, links, URLs.

const LINK_SCHEMES = /^(https?:|mailto:)/i;

function el(tag, cls) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    return e;
}

/** Only http(s) and mailto targets become links; anything else (javascript:, data:) is text. */
export function safeHref(url) {
    const u = String(url).trim();
    return LINK_SCHEMES.test(u) ? u : null;
}

function link(href, children) {
    const a = el('a');
    a.href = href;
    a.target = '_blank';
    a.rel = 'noopener noreferrer nofollow';
    if (typeof children === 'string') a.textContent = children;
    else a.append(...children);
    return a;
}

// ---- inline -------------------------------------------------------------------------------

const ESCAPABLE = '\\`*_{}[]()#+-.!|~<>"\'';
const SPECIAL = /[\\`*_~[<h\n]/g;

/** Index of the first closing delimiter `d` after `from` with non-empty content, or -1. */
function findClose(s, d, from) {
    let i = s.indexOf(d, from);
    while (i === from) i = s.indexOf(d, i + 1);
    return i;
}

function parseLinkAt(s, i) {
    // [text](url "title") with balanced brackets in the text
    let depth = 0;
    let j = i;
    for (; j < s.length; j++) {
        if (s[j] === '\\') j++;
        else if (s[j] === '[') depth++;
        else if (s[j] === ']' && --depth === 0) break;
    }
    if (j >= s.length || s[j + 1] !== '(') return null;
    const m = /^\(\s*<?([^\s()<>]*(?:\([^\s()]*\)[^\s()<>]*)*)>?(?:\s+"[^"]*")?\s*\)/.exec(s.slice(j + 1));
    if (!m) return null;
    return { text: s.slice(i + 1, j), url: m[1], end: j + 1 + m[0].length };
}

/** Appends the inline content of s to parent. */
export function renderInline(s, parent) {
    let text = '';
    const flush = () => {
        if (text) parent.append(document.createTextNode(text));
        text = '';
    };
    let i = 0;
    while (i < s.length) {
        SPECIAL.lastIndex = i;
        const m = SPECIAL.exec(s);
        if (!m) {
            text += s.slice(i);
            break;
        }
        text += s.slice(i, m.index);
        i = m.index;
        const c = s[i];
        const rest = s.slice(i);
        let r;
        if (c === '\\' && i + 1 < s.length && ESCAPABLE.includes(s[i + 1])) {
            text += s[i + 1];
            i += 2;
        } else if (c === '\\' && s[i + 1] === '\n') {
            flush();
            parent.append(el('br'));
            i += 2;
        } else if (c === '\n') {
            flush();
            parent.append(el('br'));
            i += 1;
        } else if (c === '`' && (r = /^(`+)([\s\S]*?[^`])\1(?!`)/.exec(rest))) {
            flush();
            const code = el('code');
            code.textContent = r[2].replace(/^ (.*) $/, '$1');
            parent.append(code);
            i += r[0].length;
        } else if ((c === '*' || c === '_' || c === '~') && (r = emphasis(s, i))) {
            flush();
            const e = el(r.tag);
            renderInline(r.inner, e);
            parent.append(e);
            i = r.end;
        } else if (c === '[' && (r = parseLinkAt(s, i))) {
            flush();
            const href = safeHref(r.url);
            if (href) {
                const a = link(href, []);
                renderInline(r.text, a);
                parent.append(a);
            } else {
                renderInline(r.text, parent);
            }
            i = r.end;
        } else if (c === '<' && (r = /^<((?:https?:\/\/|mailto:)[^\s<>]+)>/i.exec(rest))) {
            flush();
            parent.append(link(r[1], r[1]));
            i += r[0].length;
        } else if (c === 'h' && (i === 0 || /[\s(]/.test(s[i - 1])) &&
                   (r = /^https?:\/\/[^\s<>]*[^\s<>.,:;"')\]!?]/.exec(rest))) {
            flush();
            parent.append(link(r[0], r[0]));
            i += r[0].length;
        } else {
            text += c;
            i += 1;
        }
    }
    flush();
}

function emphasis(s, i) {
    const three = s.slice(i, i + 3);
    if (three === '***' || three === '___') {
        const end = findClose(s, three, i + 3);
        if (end > i + 3 && s[i + 3] !== ' ' && s[end - 1] !== ' ') {
            return { tag: 'strong', inner: `${three[0]}${s.slice(i + 3, end)}${three[0]}`, end: end + 3 };
        }
    }
    const two = s.slice(i, i + 2);
    if (two === '**' || two === '__' || two === '~~') {
        const end = findClose(s, two, i + 2);
        if (end > i + 2 && s[i + 2] !== ' ' && s[end - 1] !== ' ') {
            return { tag: two === '~~' ? 'del' : 'strong', inner: s.slice(i + 2, end), end: end + 2 };
        }
        return null;
    }
    const d = s[i];
    if (d === '~') return null;
    // `_` inside words (snake_case) is not emphasis
    if (d === '_' && i > 0 && /\w/.test(s[i - 1])) return null;
    if (s[i + 1] === ' ' || s[i + 1] === undefined) return null;
    let end = i + 1;
    for (;;) {
        end = s.indexOf(d, end);
        if (end < 0) return null;
        if (s[end + 1] === d) {
            end += 2; // part of a strong delimiter inside
            continue;
        }
        if (s[end - 1] === ' ' || (d === '_' && /\w/.test(s[end + 1] || ''))) {
            end += 1;
            continue;
        }
        break;
    }
    if (end === i + 1) return null;
    return { tag: 'em', inner: s.slice(i + 1, end), end: end + 1 };
}

// ---- blocks -------------------------------------------------------------------------------

const RE = {
    fence: /^ {0,3}(`{3,}|~{3,})\s*([\w+#.-]*)/,
    heading: /^ {0,3}(#{1,6})(?:\s+(.*?))?(?:\s+#+\s*)?$/,
    hr: /^ {0,3}([-*_])(?:\s*\1){2,}\s*$/,
    quote: /^ {0,3}> ?(.*)$/,
    item: /^( {0,3})([-*+]|\d{1,9}[.)])(?:\s+(.*)|$)/,
    tableSep: /^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$/,
    indentCode: /^( {4}|\t)/,
};

function splitRow(line) {
    let s = line.trim();
    if (s.startsWith('|')) s = s.slice(1);
    if (s.endsWith('|') && !s.endsWith('\\|')) s = s.slice(0, -1);
    const cells = [];
    let cur = '';
    for (let i = 0; i < s.length; i++) {
        if (s[i] === '\\' && s[i + 1] === '|') {
            cur += '|';
            i++;
        } else if (s[i] === '|') {
            cells.push(cur.trim());
            cur = '';
        } else cur += s[i];
    }
    cells.push(cur.trim());
    return cells;
}

function table(lines, i, out) {
    const head = splitRow(lines[i]);
    const aligns = splitRow(lines[i + 1]).map((c) =>
        c.startsWith(':') && c.endsWith(':') ? 'center' : c.endsWith(':') ? 'right' : c.startsWith(':') ? 'left' : '',
    );
    const wrap = el('div', 'md-table');
    const t = el('table');
    const thead = el('thead');
    const tr = el('tr');
    head.forEach((c, k) => {
        const th = el('th');
        th.scope = 'col';
        if (aligns[k]) th.style.textAlign = aligns[k];
        renderInline(c, th);
        tr.append(th);
    });
    thead.append(tr);
    t.append(thead);
    const tbody = el('tbody');
    let j = i + 2;
    for (; j < lines.length && lines[j].includes('|') && lines[j].trim(); j++) {
        const row = el('tr');
        const cells = splitRow(lines[j]);
        for (let k = 0; k < head.length; k++) {
            const td = el('td');
            if (aligns[k]) td.style.textAlign = aligns[k];
            renderInline(cells[k] || '', td);
            row.append(td);
        }
        tbody.append(row);
    }
    t.append(tbody);
    wrap.append(t);
    out.append(wrap);
    return j;
}

function list(lines, i, out) {
    const first = RE.item.exec(lines[i]);
    const ordered = /\d/.test(first[2]);
    const l = el(ordered ? 'ol' : 'ul');
    if (ordered && parseInt(first[2], 10) !== 1) l.start = parseInt(first[2], 10);
    let j = i;
    while (j < lines.length) {
        const m = RE.item.exec(lines[j]);
        if (!m || /\d/.test(m[2]) !== ordered) break;
        const indent = m[1].length + m[2].length + 1;
        const body = [m[3] || ''];
        j++;
        // continuation: indented lines, or blank lines followed by indented lines
        while (j < lines.length) {
            const line = lines[j];
            if (line.trim() === '') {
                if (j + 1 < lines.length && /^\s{2,}\S/.test(lines[j + 1])) {
                    body.push('');
                    j++;
                    continue;
                }
                break;
            }
            if (/^\s{2,}/.test(line)) {
                body.push(line.slice(Math.min(indent, line.length - line.trimStart().length)));
                j++;
                continue;
            }
            if (RE.item.test(line) || isBlockStart(lines, j)) break;
            body.push(line); // lazy continuation of the paragraph
            j++;
        }
        const li = el('li');
        const task = /^\[([ xX])\]\s+/.exec(body[0]);
        if (task) {
            const box = el('input');
            box.type = 'checkbox';
            box.disabled = true;
            box.checked = task[1] !== ' ';
            box.setAttribute('aria-label', box.checked ? 'done' : 'to do');
            li.append(box, ' ');
            body[0] = body[0].slice(task[0].length);
        }
        const inner = renderBlocks(body.join('\n'));
        // a single paragraph stays inline ("tight" list)
        if (inner.childNodes.length === 1 && inner.firstChild.tagName === 'P') li.append(...inner.firstChild.childNodes);
        else li.append(inner);
        l.append(li);
        if (j < lines.length && lines[j].trim() === '' && j + 1 < lines.length && RE.item.test(lines[j + 1])) j++;
    }
    out.append(l);
    return j;
}

function isBlockStart(lines, i) {
    const line = lines[i];
    return (
        RE.fence.test(line) ||
        RE.heading.test(line) ||
        RE.hr.test(line) ||
        RE.quote.test(line) ||
        (line.includes('|') && i + 1 < lines.length && RE.tableSep.test(lines[i + 1]) && lines[i + 1].includes('-'))
    );
}

/** Renders Markdown text into a DocumentFragment. Never interprets HTML. */
export function renderBlocks(src) {
    const out = document.createDocumentFragment();
    const lines = String(src).replace(/\r\n?/g, '\n').split('\n');
    let i = 0;
    while (i < lines.length) {
        const line = lines[i];
        let m;
        if (line.trim() === '') {
            i++;
        } else if ((m = RE.fence.exec(line))) {
            const fence = m[1];
            const body = [];
            i++;
            while (i < lines.length && !lines[i].trimStart().startsWith(fence)) body.push(lines[i++]);
            i++; // closing fence (or end of a still-streaming block)
            const pre = el('pre');
            const code = el('code');
            if (m[2]) {
                code.dataset.lang = m[2];
                pre.setAttribute('aria-label', `${m[2]} code`);
            }
            code.textContent = body.join('\n');
            pre.append(code);
            out.append(pre);
        } else if ((m = RE.heading.exec(line))) {
            const h = el(`h${m[1].length}`);
            renderInline(m[2] || '', h);
            out.append(h);
            i++;
        } else if (RE.hr.test(line)) {
            out.append(el('hr'));
            i++;
        } else if (RE.quote.test(line)) {
            const body = [];
            while (i < lines.length && (m = RE.quote.exec(lines[i]))) {
                body.push(m[1]);
                i++;
            }
            const q = el('blockquote');
            q.append(renderBlocks(body.join('\n')));
            out.append(q);
        } else if (RE.item.test(line)) {
            i = list(lines, i, out);
        } else if (line.includes('|') && i + 1 < lines.length && RE.tableSep.test(lines[i + 1]) && lines[i + 1].includes('-')) {
            i = table(lines, i, out);
        } else if (RE.indentCode.test(line)) {
            const body = [];
            while (i < lines.length && (RE.indentCode.test(lines[i]) || lines[i].trim() === '')) {
                body.push(lines[i].replace(RE.indentCode, ''));
                i++;
            }
            while (body.length && body[body.length - 1].trim() === '') body.pop();
            const pre = el('pre');
            const code = el('code');
            code.textContent = body.join('\n');
            pre.append(code);
            out.append(pre);
        } else {
            const body = [line];
            i++;
            while (i < lines.length && lines[i].trim() !== '' && !isBlockStart(lines, i) && !RE.item.test(lines[i])) {
                body.push(lines[i]);
                i++;
            }
            const p = el('p');
            renderInline(body.join('\n').trim(), p);
            out.append(p);
        }
    }
    return out;
}

/** Renders Markdown into `target`, replacing its children. */
export function renderMarkdown(target, src) {
    target.replaceChildren(renderBlocks(src));
}
