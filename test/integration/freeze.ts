// The reactor thread of this process, stopped and let go: what a busy machine does to it at
// the worst moment. Only that thread stops (PTRACE_SEIZE + PTRACE_INTERRUPT), the JS thread
// runs on; a watcher frozen so must hold nothing (ebpf-only), or it would hold others' runtimes.
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { until } from '../kit/index.js';

const FREEZE_THREAD = `
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
tid = int(sys.argv[1])
if libc.ptrace(0x4206, tid, None, None) != 0: sys.exit('PTRACE_SEIZE: %d' % ctypes.get_errno())
if libc.ptrace(0x4207, tid, None, None) != 0: sys.exit('PTRACE_INTERRUPT: %d' % ctypes.get_errno())
os.waitpid(tid, 0x40000000)
print('stopped', flush=True)
sys.stdin.readline()
libc.ptrace(17, tid, None, None)
print('resumed', flush=True)
`;

/** The reactor threads of this process: named 'ocinotify' by the addon. */
export function reactorTids(): number[] {
  return readdirSync('/proc/self/task')
    .filter((tid) => readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim() === 'ocinotify')
    .map(Number);
}

/** The reactor thread a watcher started after `before` was listed runs in: it names itself once it runs. */
export async function newReactorTid(before: readonly number[]): Promise<number> {
  const fresh = (): number[] => reactorTids().filter((t) => !before.includes(t));
  await until(() => fresh().length > 0, 'the new reactor thread to name itself', 5000);
  return fresh()[0]!;
}

export class FrozenThread {
  private readonly child: ChildProcess;
  private said = '';

  private constructor(tid: number) {
    this.child = spawn('python3', ['-c', FREEZE_THREAD, String(tid)], { stdio: ['pipe', 'pipe', 'inherit'] });
    this.child.stdout!.on('data', (d: Buffer) => (this.said += d.toString()));
  }

  /** Resolves once thread tid is stopped. */
  static async freeze(tid: number): Promise<FrozenThread> {
    const frozen = new FrozenThread(tid);
    await until(() => frozen.said.includes('stopped'), 'the reactor thread to stop', 5000);
    return frozen;
  }

  /** Resolves once the thread runs again. */
  async resume(): Promise<void> {
    this.child.stdin!.write('go\n');
    await until(() => this.said.includes('resumed'), 'the reactor thread to resume', 5000);
  }
}
