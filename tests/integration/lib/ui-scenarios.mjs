// SPDX-License-Identifier: MIT
// Fake-model scenarios for the web UI tests (plugged into fake-openai.mjs): a Markdown answer,
// hostile HTML in answers and tool results, and a tool call followed by a slow answer.

import { addScenarios } from './fake-openai.mjs';

export const MD_ANSWER = [
    '# Report title',
    '',
    'Some **bold**, *italic*, `inline code` and a [link](https://example.com/docs).',
    '',
    '## Steps',
    '',
    '- first item',
    '- second item',
    '  - nested item',
    '',
    '1. one',
    '2. two',
    '',
    '```js',
    'const x = 1 < 2 && "<b>not bold</b>";',
    '```',
    '',
    '| Name | Value |',
    '| ---- | ----: |',
    '| alpha | 1 |',
    '| beta | 2 |',
    '',
    '> a quote',
].join('\n');

// Each payload would set window.__pwned if it ever became live HTML or a followed link.
export const XSS_TEXT = [
    'Here is <img src=x onerror="window.__pwned=\'img\'"> an image',
    '<script>window.__pwned = "script"</script>',
    '[click me](javascript:window.__pwned=\'link\') and <a href="javascript:window.__pwned=1">raw link</a>',
    '<svg onload="window.__pwned=\'svg\'"></svg> **<b>bold?</b>**',
].join('\n\n');
export const XSS_FILE = '<img src=x onerror="window.__pwned=\'file\'"><script>window.__pwned="file-script"</script>';

export const SLOW_WORDS = 40;
export const slowText = (n = SLOW_WORDS) => Array.from({ length: n }, (_, i) => `w${i}`).join(' ');

addScenarios({
    ui_md(s) {
        s.text(MD_ANSWER);
    },
    // write a hostile file, read it back (tool result with HTML), then a hostile answer
    ui_xss(s, a) {
        if (a.step === 0) s.tools([['write_file', { path: 'evil.html', content: XSS_FILE }]]);
        else if (a.step === 1) s.tools([['read_file', { path: 'evil.html' }]]);
        else s.text(XSS_TEXT);
    },
    // one quick tool call, then a slow answer (params n, delay)
    ui_toolslow(s, a) {
        if (a.step === 0) s.tools([['write_file', { path: a.params.path || 'notes.md', content: '# notes\nline two' }]]);
        else {
            s.delay = Number(a.params.delay || 60);
            s.text(slowText(Number(a.params.n || SLOW_WORDS)));
        }
    },
});
