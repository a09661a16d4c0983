// The kit shared by test/ and bench/: no test framework in it, so that a benchmark can use it.
export { RUNC, CRI_FIXTURE, busyboxRootfs, criAnnotations, writeBundle } from './bundle.js';
export { Collected, ocinotify } from './child.js';
export { execRuntime, sq, tail, timedShell, underAsan, type Timed } from './exec.js';
export { ended, fence } from './fence.js';
export { Lab, deleteWhenStopped, privileged, runcStatus, timedRunc, unheldRuncMs } from './lab.js';
export { Recorder, finish, lifecycle } from './recorder.js';
export { WAIT_MS, busyWait, sleep, until } from './wait.js';
