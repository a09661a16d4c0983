// A private npm registry for tests: verdaccio (installed by `make verdaccio`, which sets
// OCINOTIFY_VERDACCIO) on a loopback port, storage in a directory of its own, no uplink, so
// that what installs from it is only what was published to it.
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sleep } from './wait.js';

/** verdaccio runs as nobody when the tests run as root: it has no need of root. */
const NOBODY = 65534;
const START_MS = 60_000;

export interface Registry {
  url: string;
  /** an npmrc that points npm at the registry, logged in as a user allowed to publish (removed by stop) */
  npmrc: string;
  /** the server's output: where to look when it misbehaved */
  log: () => string;
  stop: () => Promise<void>;
}

/** The verdaccio installation, or null when `make verdaccio` has not run (never under CI=true). */
export function verdaccioDir(): string | null {
  const dir = process.env.OCINOTIFY_VERDACCIO ?? null;
  if (dir === null && process.env.CI === 'true') throw new Error('OCINOTIFY_VERDACCIO is not set: run the tests through make');
  return dir;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

/** Starts verdaccio from the installation at verdaccio; stop() ends it and removes its state. */
export async function startRegistry(verdaccio: string): Promise<Registry> {
  // Its own directory, which nobody may enter (mkdtemp makes it 0700).
  const dir = mkdtempSync(join(tmpdir(), 'ocinotify-registry-'));
  chmodSync(dir, 0o755);
  const storage = join(dir, 'storage');
  mkdirSync(storage, { recursive: true });
  const config = join(dir, 'config.yaml');
  writeFileSync(
    config,
    [
      `storage: ${storage}`,
      `auth: { htpasswd: { file: ${join(storage, 'htpasswd')}, max_users: 1 } }`,
      'uplinks: {}',
      "packages: { '**': { access: $all, publish: $authenticated } }",
      'web: { enable: false }',
      'log: { type: stdout, format: pretty, level: warn }',
    ].join('\n'),
  );
  const asRoot = process.geteuid?.() === 0;
  if (asRoot) chownSync(storage, NOBODY, NOBODY);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/`;
  const server = [process.execPath, join(verdaccio, 'node_modules/verdaccio/bin/verdaccio'), '--config', config, '--listen', `127.0.0.1:${port}`];
  const as = asRoot ? ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups'] : [];
  const [command, ...args] = [...as, ...server] as [string, ...string[]];
  const child: ChildProcess = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (output += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (output += d));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await ready(url, child, () => output);
    const npmrc = join(dir, 'npmrc');
    writeFileSync(npmrc, `registry=${url}\n//127.0.0.1:${port}/:_authToken=${await addUser(url)}\n`);
    return { url, npmrc, log: () => output, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function ready(url: string, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + START_MS;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`verdaccio exited ${child.exitCode}: ${log()}`);
    const ok = await fetch(`${url}-/ping`).then((r) => r.ok, () => false);
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`verdaccio did not answer within ${START_MS} ms: ${log()}`);
    await sleep(100);
  }
}

/** What `npm adduser` does: the registry creates the user and hands back its token. */
async function addUser(url: string): Promise<string> {
  const name = 'maintainer';
  const res = await fetch(`${url}-/user/org.couchdb.user:${name}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name, password: `pw-${process.pid}-${Date.now()}` }),
  });
  const body = (await res.json()) as { token?: string };
  if (!res.ok || !body.token) throw new Error(`adduser: ${res.status} ${JSON.stringify(body)}`);
  return body.token;
}
