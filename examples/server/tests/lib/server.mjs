// Start and stop the real ticketyboo-server binary for a test, and talk to it.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

// The binary: $TBS_SERVER, else the usual build trees.
export function serverBinary() {
  const candidates = [
    process.env.TBS_SERVER,
    process.env.TB_BUILD_DIR && join(process.env.TB_BUILD_DIR, 'examples/server/ticketyboo-server'),
    resolve(here, '../../../../build/examples/server/ticketyboo-server'),
  ].filter(Boolean);
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`ticketyboo-server not found (tried ${candidates.join(', ')}); set TBS_SERVER`);
  return found;
}

// Start a server on a free port with a fresh database and the minimum password cost.
// `dir` reuses a directory (and its database) from an earlier server: keep: true on its stop().
export async function startServer({ args = [], env = {}, timeoutMs = 15000, dir: reuse } = {}) {
  const dir = reuse || await mkdtemp(join(tmpdir(), 'tbs-test-'));
  const db = join(dir, 'test.db');
  const child = spawn(serverBinary(),
    ['--host', '127.0.0.1', '--port', '0', '--db', db, '--password-cost', 'min', ...args],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let stdout = '';
  let stderr = '';
  const exited = new Promise((res) => child.on('exit', (code, signal) => res({ code, signal })));
  child.stdout.setEncoding('utf8').on('data', (d) => { stdout += d; });
  const base = await new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`server did not start:\n${stderr}`)), timeoutMs);
    child.stderr.setEncoding('utf8').on('data', (d) => {
      stderr += d;
      const m = stderr.match(/listening on (http:\/\/[^\s/]+)\//);
      if (m) {
        clearTimeout(timer);
        res(m[1]);
      }
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      rej(new Error(`server exited (${code ?? signal}) before listening:\n${stderr}`));
    });
  });
  const server = {
    base,
    dir,
    db,
    child,
    exited,
    get stdout() { return stdout; },
    get stderr() { return stderr; },
    // Event lines written so far (parsed).
    events() {
      return stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
    },
    // Stop with `signal`; resolves to the exit status.
    async stop(signal = 'SIGTERM', { waitMs = 15000, keep = false } = {}) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), waitMs);
      const status = await exited;
      clearTimeout(timer);
      if (!keep) await rm(dir, { recursive: true, force: true });
      return status;
    },
  };
  return server;
}

// A client with its own cookie jar (just the session cookie).
export class Client {
  constructor(base) {
    this.base = base;
    this.cookie = null;
  }

  async request(method, path, { body, headers = {}, json = true } = {}) {
    const h = { ...headers };
    if (this.cookie) h.cookie = this.cookie;
    let payload;
    if (body !== undefined) {
      payload = typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body);
      if (json && !h['content-type']) h['content-type'] = 'application/json';
    }
    const res = await fetch(this.base + path, { method, headers: h, body: payload });
    const setCookies = res.headers.getSetCookie();
    for (const c of setCookies) {
      const [pair] = c.split(';');
      const eq = pair.indexOf('=');
      if (pair.slice(0, eq) === 'tb_session') this.cookie = pair.slice(eq + 1) ? pair : null;
    }
    const text = await res.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    return { status: res.status, headers: res.headers, text, body: data, setCookies };
  }

  get(path, opts) { return this.request('GET', path, opts); }
  post(path, body, opts = {}) { return this.request('POST', path, { ...opts, body }); }
  put(path, body, opts = {}) { return this.request('PUT', path, { ...opts, body }); }
  delete(path, opts) { return this.request('DELETE', path, opts); }
}

let counter = 0;
export function uniqueEmail(prefix = 'user') {
  counter += 1;
  return `${prefix}.${process.pid}.${Date.now()}.${counter}@example.com`;
}

// Sign up a fresh user; returns [client, user].
export async function newUser(base, prefix) {
  const c = new Client(base);
  const res = await c.post('/api/users/signup', { email: uniqueEmail(prefix), password: 'correct horse' });
  if (res.status !== 201) throw new Error(`signup failed: ${res.status} ${res.text}`);
  return [c, res.body];
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Poll `fn` until it returns a truthy value or `ms` pass.
export async function eventually(fn, ms = 5000, step = 50) {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) throw new Error('condition not met in time');
    await sleep(step);
  }
}
