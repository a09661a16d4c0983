// A watcher in this process whose events are kept, and the container steps tests wait on.
import { ContainerWatcher, type ContainerEvent, type WatchdogEvent, type WatchOptions } from '../../src/index.js';
import { ended, fence } from './fence.js';
import type { Lab } from './lab.js';
import { WAIT_MS, until } from './wait.js';

const MAX_NOTES = 200;

/** Starts a watcher and records every event whose id is in ids (all events when ids is null). */
export class Recorder {
  readonly events: ContainerEvent[] = [];
  readonly watcher: ContainerWatcher;
  /** What else the watcher said (watchdog takeovers, gate timeouts, diagnostics, losses, errors): a failed assertion's context. */
  readonly notes: string[] = [];
  /** watchdog takeovers the watcher reported */
  private takeovers = 0;

  constructor(options: WatchOptions = {}, private readonly ids: Set<string> | null = null) {
    this.watcher = new ContainerWatcher(options);
    this.watcher.on('event', (e: ContainerEvent) => {
      if (this.ids === null || this.ids.has(e.id)) this.events.push(e);
    });
    for (const name of ['watchdog', 'gateTimeout', 'diagnostic', 'lost', 'error'] as const) {
      this.watcher.on(name, (e: unknown) => {
        if (this.notes.length < MAX_NOTES) this.notes.push(`${name} ${e instanceof Error ? e.message : JSON.stringify(e)}`);
      });
    }
    this.watcher.on('watchdog', (e: WatchdogEvent) => {
      if (e.change === 'takeover') this.takeovers++;
    });
  }

  /** Whether the watcher said its watchdog took over (the watcher had stalled for the budget). */
  tookOver(): boolean {
    return this.takeovers > 0;
  }

  /** The notes, for an assertion's message: what the watcher said besides its events. */
  context(): string {
    const said = this.notes.length === 0 ? 'the watcher said nothing else' : `the watcher also said:\n${this.notes.join('\n')}`;
    let stats: string;
    try {
      stats = JSON.stringify(this.watcher.stats());
    } catch (err) {
      stats = `unavailable (${(err as Error).message})`;
    }
    return `${said}\nits counters: ${stats}`;
  }

  of(id: string, type?: ContainerEvent['type']): ContainerEvent[] {
    return this.events.filter((e) => e.id === id && (type === undefined || e.type === type));
  }

  /** Resolves once predicate holds on the recorded events, rejects after timeoutMs. */
  until(predicate: (events: ContainerEvent[]) => boolean, timeoutMs = WAIT_MS): Promise<void> {
    return until(() => predicate(this.events), () => `events; recorded ${this.events.length}`, timeoutMs);
  }

  /** Resolves once this watcher has reported everything that happened before now (fence.ts), whatever ids it records. */
  async fence(lab: Lab): Promise<void> {
    const seen: ContainerEvent[] = [];
    const onEvent = (e: ContainerEvent): number => seen.push(e);
    this.watcher.on('event', onEvent);
    try {
      await fence(lab, (id) => ended(seen, id));
    } finally {
      this.watcher.off('event', onEvent);
    }
  }

  close(): void {
    this.watcher.close();
  }
}

/**
 * start, kill -9 and delete a created container, waiting for the watcher to report its start and
 * exit, and for the container to stop: each wait gives up after waitMs.
 */
export async function finish(lab: Lab, rec: Recorder, id: string, waitMs = WAIT_MS): Promise<void> {
  await lab.runc(['start', id]);
  await rec.until((ev) => ev.some((e) => e.id === id && e.type === 'start'), waitMs);
  await lab.runc(['kill', id, 'KILL']);
  await rec.until((ev) => ev.some((e) => e.id === id && e.type === 'exit'), waitMs);
  await lab.deleteExited(id, waitMs);
}

/** create, start, kill -9 and delete one container, waiting for the watcher to report start and exit (finish). */
export async function lifecycle(lab: Lab, rec: Recorder, id: string, bundle: string, waitMs?: number): Promise<void> {
  await lab.runc(['create', '--bundle', bundle, id]);
  await finish(lab, rec, id, waitMs);
}
