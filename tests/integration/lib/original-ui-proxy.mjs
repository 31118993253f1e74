// SPDX-License-Identifier: MIT
// A same-origin home for the ORIGINAL web UI (@tarko/agent-ui-builder's static build, installed
// by npm): its files and index.html (with the script the original CLI injects, API on the page's
// own origin) served here, /api/* and /socket.io/* forwarded to the server as they came, SSE
// streamed and WebSocket upgrades piped, as a reverse proxy in front of the original CLI would.

import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const ORIGINAL_UI_DIR = path.resolve(HERE, '..', '..', '..', 'node_modules', '@tarko', 'agent-ui-builder', 'static');
export const HAVE_ORIGINAL_UI = fs.existsSync(path.join(ORIGINAL_UI_DIR, 'index.html'));

const MIME = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml', '.png': 'image/png', '.json': 'application/json' };
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer']);
const forwarded = (p) => p === '/api' || p.startsWith('/api/') || p.startsWith('/socket.io/');

/** Starts the proxy for `upstream` (a started server). Resolves { origin, requests, close() }. */
export async function startOriginalUi(upstream) {
    const html = Buffer.from(
        fs
            .readFileSync(path.join(ORIGINAL_UI_DIR, 'index.html'), 'utf8')
            .replace('</head>', '<script>window.AGENT_BASE_URL = "";</script>\n</head>'),
    );
    const requests = [];
    const sockets = new Set();
    const server = http.createServer((req, res) => {
        const { pathname } = new URL(req.url, 'http://ui.invalid');
        if (forwarded(pathname)) {
            const rec = { method: req.method, path: req.url, body: '', status: null };
            requests.push(rec);
            req.on('data', (c) => (rec.body += c));
            const headers = {};
            for (const [k, v] of Object.entries(req.headers)) if (!HOP.has(k)) headers[k] = v;
            if (req.headers['transfer-encoding']) headers['transfer-encoding'] = req.headers['transfer-encoding'];
            const up = http.request({ host: '127.0.0.1', port: upstream.port, method: req.method, path: req.url, headers, agent: false }, (ur) => {
                rec.status = ur.statusCode;
                const out = [];
                for (let i = 0; i < ur.rawHeaders.length; i += 2) if (!HOP.has(ur.rawHeaders[i].toLowerCase())) out.push(ur.rawHeaders[i], ur.rawHeaders[i + 1]);
                res.writeHead(ur.statusCode, ur.statusMessage, out);
                res.flushHeaders();
                ur.pipe(res);
            });
            up.on('error', () => (res.headersSent ? res.destroy() : res.writeHead(502).end()));
            res.on('close', () => !res.writableFinished && up.destroy());
            req.pipe(up);
            return;
        }
        const rel = path.normalize(decodeURIComponent(pathname));
        const f = path.join(ORIGINAL_UI_DIR, rel);
        const file = rel !== '/' && f.startsWith(ORIGINAL_UI_DIR + path.sep) && fs.statSync(f, { throwIfNoEntry: false })?.isFile() ? f : null;
        const body = file && path.basename(file) !== 'index.html' ? fs.readFileSync(file) : html;
        res.writeHead(200, { 'content-type': file ? MIME[path.extname(file)] || 'application/octet-stream' : MIME['.html'], 'cache-control': 'no-store' });
        res.end(body);
    });
    server.on('upgrade', (req, sock, head) => {
        const up = net.connect(upstream.port, '127.0.0.1', () => {
            let text = `${req.method} ${req.url} HTTP/${req.httpVersion}\r\n`;
            for (let i = 0; i < req.rawHeaders.length; i += 2) text += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
            up.write(`${text}\r\n`);
            if (head && head.length) up.write(head);
            sock.pipe(up);
            up.pipe(sock);
        });
        for (const s of [up, sock]) {
            sockets.add(s);
            s.on('close', () => sockets.delete(s));
            s.on('error', () => {
                up.destroy();
                sock.destroy();
            });
        }
    });
    server.on('connection', (s) => {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
    });
    await new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', resolve);
    });
    return {
        origin: `http://127.0.0.1:${server.address().port}`,
        requests,
        close: () =>
            new Promise((resolve) => {
                for (const s of sockets) s.destroy();
                server.close(() => resolve());
            }),
    };
}
