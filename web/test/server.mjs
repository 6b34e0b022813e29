// A tiny static server for the tests: 127.0.0.1, an ephemeral port, files from a map of URL
// prefixes to directories, no directory listings (a folder's URL serves its index.html), and
// a log of every request it gets.

import { createServer } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import { extname, join, normalize, sep } from 'node:path';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json',
  '.png': 'image/png',
};

/**
 * Serves `mounts` ({'/site/': '/abs/dir', ...}); resolves to {origin, requests, close()}.
 * `requests` lists every request as {method, url, status}.
 */
export async function serve(mounts) {
  const requests = [];
  const server = createServer(async (req, res) => {
    const entry = { method: req.method, url: req.url, status: 404 };
    requests.push(entry);
    const send = (status, body, type = 'text/plain; charset=utf-8') => {
      entry.status = status;
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'GET only');
    const path = decodeURIComponent(new URL(req.url, 'http://127.0.0.1').pathname);
    const prefix = Object.keys(mounts).sort((a, b) => b.length - a.length).find((p) => path.startsWith(p));
    if (!prefix) return send(404, 'not found');
    const root = mounts[prefix];
    let file = normalize(join(root, path.slice(prefix.length)));
    if (file !== root && !file.startsWith(root.endsWith(sep) ? root : root + sep)) return send(403, 'outside');
    try {
      if ((await stat(file)).isDirectory()) {
        if (!path.endsWith('/')) return send(404, 'not found');
        file = join(file, 'index.html');
      }
      const body = await readFile(file);
      return send(200, req.method === 'HEAD' ? '' : body, TYPES[extname(file)] ?? 'application/octet-stream');
    } catch {
      return send(404, 'not found');
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    origin: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }),
  };
}
