// What else ran while a phase measured. Other watchers matter most: their fanotify groups
// hold every exec of runc on the machine, ours included, until their JavaScript answers.
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { RUNC } from './lab.js';

const SAMPLE_MS = 2000;

export interface Conditions {
  phase: string;
  /** 1-minute load average when the phase began and ended */
  loadBegin: number;
  loadEnd: number;
  /** processes other than ours with a fanotify mark on runc, sampled every 2 s */
  otherWatchersMax: number;
  /** share of the samples that found at least one */
  otherWatchersShare: number;
}

export function loadAverage(): number {
  return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
}

/**
 * Processes holding a fanotify mark on runc's inode that are not ours: neither their command line
 * nor their executable (a watcher's watchdog, `ocinotify-watchdog --fd 3`, runs from the package
 * copy) is under `ours`.
 */
function otherWatchers(runcIno: string, ours: string): number {
  let count = 0;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(ours) || readlinkSync(`/proc/${pid}/exe`).startsWith(ours)) continue;
      const marks = readdirSync(`/proc/${pid}/fd`).some(
        (fd) =>
          readlinkSync(`/proc/${pid}/fd/${fd}`) === 'anon_inode:[fanotify]' &&
          readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8').includes(`fanotify ino:${runcIno} `),
      );
      if (marks) count++;
    } catch {
      // gone, or an fd closed meanwhile
    }
  }
  return count;
}

/** Samples the machine while a phase runs; stop() tells what it saw. */
export class ConditionsSampler {
  private readonly loadBegin = loadAverage();
  private readonly samples: number[] = [];
  private readonly timer: NodeJS.Timeout;
  private readonly runcIno = statSync(RUNC).ino.toString(16);

  constructor(
    private readonly phase: string,
    private readonly ours: string,
  ) {
    this.sample();
    this.timer = setInterval(() => this.sample(), SAMPLE_MS);
  }

  stop(): Conditions {
    clearInterval(this.timer);
    const seen = this.samples.filter((n) => n > 0).length;
    return {
      phase: this.phase,
      loadBegin: this.loadBegin,
      loadEnd: loadAverage(),
      otherWatchersMax: Math.max(0, ...this.samples),
      otherWatchersShare: this.samples.length ? seen / this.samples.length : 0,
    };
  }

  private sample(): void {
    this.samples.push(otherWatchers(this.runcIno, this.ours));
  }
}
