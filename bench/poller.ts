// What naive agents do: list the runtime's state directory every 100 ms and report each
// container directory the first time a poll finds it.
//
//   poller STATE_ROOT     prints "ready", then "<CLOCK_MONOTONIC ns> <id>" per new container
import { readdirSync } from 'node:fs';

const INTERVAL_MS = 100;
const [stateRoot] = process.argv.slice(2);
let known = new Set<string>();

function poll(): void {
  let names: Set<string>;
  try {
    names = new Set(readdirSync(stateRoot!));
  } catch {
    return; // no container was created yet
  }
  const now = process.hrtime.bigint();
  for (const name of names) if (!known.has(name)) process.stdout.write(`${now} ${name}\n`);
  known = names;
}

process.stdout.write('ready\n');
setInterval(poll, INTERVAL_MS);
process.once('SIGTERM', () => process.exit(0));
