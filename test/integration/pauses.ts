// The ways a watcher's process stops running, for the watchdog tests: each stops a process and
// returns how to make it run again. Other tests on this machine exec runtimes too, and a stopped
// watcher holds theirs until its watchdog stands in: callers resume in a finally, at once.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { until } from '../kit/index.js';

export type PauseKind = 'SIGSTOP' | 'SIGTSTP' | 'ptrace';

const PTRACE_STOP = join(import.meta.dirname, 'processes', 'ptrace-stop.py');

/** Each thread's state letter (/proc/PID/task/TID/stat): T stopped, t traced and stopped. */
function threadStates(pid: number): string[] {
  try {
    return readdirSync(`/proc/${pid}/task`).map((tid) => {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    });
  } catch {
    return [];
  }
}

export function isStopped(pid: number): boolean {
  const states = threadStates(pid);
  return states.length > 0 && states.every((s) => s === 'T' || s === 't');
}

/** Stops pid; resolves once every thread of it is stopped, with a resume that never throws. */
export async function pause(pid: number, kind: PauseKind): Promise<() => Promise<void>> {
  if (kind !== 'ptrace') {
    const resume = async (): Promise<void> => {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // gone
      }
    };
    try {
      process.kill(pid, kind);
      await until(() => isStopped(pid), `${pid} stopped by ${kind}`, 5000);
    } catch (err) {
      await resume();
      throw err;
    }
    return resume;
  }
  return ptraceStop([String(pid)]);
}

/**
 * Stops the threads of pid named thread (a process cannot trace its own threads: a helper does),
 * for at most forMs: the caller may be blocked by what it stopped, and cannot be trusted to resume.
 */
export function ptraceStopThread(pid: number, thread: string, forMs: number): Promise<() => Promise<void>> {
  return ptraceStop([String(pid), '--only', thread, '--for', String(forMs / 1000)]);
}

async function ptraceStop(args: string[]): Promise<() => Promise<void>> {
  const tracer = spawn('python3', [PTRACE_STOP, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => tracer.once('close', () => resolve()));
  let said = '';
  tracer.stdout.on('data', (d: Buffer) => (said += d.toString()));
  const resume = async (): Promise<void> => {
    tracer.stdin.end();
    const killer = setTimeout(() => tracer.kill('SIGKILL'), 2000); // its death detaches too
    await exited;
    clearTimeout(killer);
  };
  try {
    await until(() => said.includes('stopped') || tracer.exitCode !== null, 'the tracer to stop every thread', 5000);
    if (!said.includes('stopped')) throw new Error(`ptrace-stop.py ${args.join(' ')} exited ${tracer.exitCode}`);
  } catch (err) {
    await resume();
    throw err;
  }
  return resume;
}
