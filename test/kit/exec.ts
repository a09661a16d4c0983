// Runtimes and shells run as the tests and benchmarks need them: through /bin/sh, their output
// in files, their wall time measured by the shell itself.
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, rmSync } from 'node:fs';

/**
 * Runs a runtime via /bin/sh; resolves with its stdout, rejects on a non-zero exit with the
 * end of log, where its stderr went.
 *
 * Through /bin/sh: node's child_process spawns with vfork semantics, so the calling thread -
 * ours, the one that answers the gate - waits until the child's exec completes, and a held
 * exec would wait for the deadline. A container's init inherits the runtime's stdio: files,
 * never a pipe we would wait on.
 */
export function execRuntime(binary: string, argv: string[], log: string, cwd?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const out = `${log}.${process.hrtime.bigint().toString()}.out`;
    const fd = openSync(out, 'w');
    const logFd = openSync(log, 'a');
    const child = spawn('/bin/sh', ['-c', 'exec "$@"', 'sh', binary, ...argv], { cwd, stdio: ['ignore', fd, logFd] });
    closeSync(fd);
    closeSync(logFd);
    child.on('error', reject);
    child.on('exit', (code) => {
      const stdout = readFileSync(out, 'utf8');
      rmSync(out, { force: true });
      if (code === 0) resolve(stdout);
      else reject(new Error(`${binary} ${argv.join(' ')} exited ${code}: ${tail(log)}`));
    });
  });
}

/**
 * Runs a shell command that reports its own wall time in ms, independent of our event loop, and
 * when it ended (endedAt, epoch ms: Date.now()'s clock).
 * In a process group of its own, SIGKILLed whole after killAfterMs (code -1, killed): a runtime
 * blocked at a permission check that nobody answers yields only to SIGKILL, and the test must not
 * wait for it.
 */
export interface Timed {
  code: number;
  ms: number;
  endedAt: number;
  stderr: string;
  killed: boolean;
}

export function timedShell(script: string, killAfterMs = 120_000): Promise<Timed> {
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', `s=$(date +%s%N); ${script}; rc=$?; e=$(date +%s%N); echo "$rc $(( (e - s) / 1000000 )) $(( e / 1000000 ))"`], {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
      env: uninstrumented(),
    });
    let killed = false;
    const started = Date.now();
    const limit = setTimeout(() => {
      killed = true;
      process.kill(-child.pid!, 'SIGKILL');
    }, killAfterMs);
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('close', () => {
      clearTimeout(limit);
      if (killed) return resolve({ code: -1, ms: Date.now() - started, endedAt: Date.now(), stderr: err, killed });
      const [code, ms, endedAt] = out.trim().split('\n').pop()!.split(' ').map(Number);
      resolve({ code: code ?? -1, ms: ms ?? -1, endedAt: endedAt ?? -1, stderr: err, killed });
    });
  });
}

/**
 * The environment without the ASan runtime that `make test-asan` preloads for our addon: the
 * runtimes and shells timed here are not ours, and it would slow each process they start
 * (date(1) too) into the time measured.
 */
function uninstrumented(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  if (underAsan()) delete env.LD_PRELOAD;
  return env;
}

/** Whether this run is `make test-asan`'s: our addon and watchdog instrumented, and slower. */
export function underAsan(): boolean {
  return process.env.LD_PRELOAD?.includes('libasan') ?? false;
}

/** A shell-quoted word. */
export function sq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The last lines of a log file, for an error message; '' when there is none. */
export function tail(path: string, lines = 5): string {
  try {
    return readFileSync(path, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}
