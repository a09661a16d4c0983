// Child processes whose output a test reads as it comes: the ocinotify CLI, the examples.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../../bin/ocinotify', import.meta.url));

/** A child with its stdout and stderr collected; stdout read as lines, or as JSON lines. */
export class Collected {
  readonly child: ChildProcess;
  /** the exit code, once the child has exited and all its output is read */
  readonly done: Promise<number | null>;
  private out = '';
  /** what follows the last complete line of out */
  private partial = '';
  private err = '';
  private readonly complete: string[] = [];
  private readonly parsed: unknown[] = [];

  constructor(command: string, args: string[], cwd?: string) {
    this.child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      this.out += d;
      this.partial += d;
      const nl = this.partial.lastIndexOf('\n');
      if (nl < 0) return;
      this.complete.push(...this.partial.slice(0, nl).split('\n').filter(Boolean));
      this.partial = this.partial.slice(nl + 1);
    });
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.err += d));
    this.done = new Promise((resolve) => this.child.on('close', (code) => resolve(code)));
  }

  stdout(): string {
    return this.out;
  }

  stderr(): string {
    return this.err;
  }

  /** stdout's complete, non-empty lines so far */
  lines(): readonly string[] {
    return this.complete;
  }

  /** lines(), each parsed as JSON (once) */
  records<T = Record<string, unknown>>(): T[] {
    while (this.parsed.length < this.complete.length) this.parsed.push(JSON.parse(this.complete[this.parsed.length]!));
    return this.parsed as T[];
  }
}

/** `node bin/ocinotify args`, behind a wrapper command (setpriv, unshare...) when one is given. */
export function ocinotify(args: string[], wrapper: string[] = []): Collected {
  const [command, ...rest] = [...wrapper, process.execPath, CLI, ...args] as [string, ...string[]];
  return new Collected(command, rest);
}
