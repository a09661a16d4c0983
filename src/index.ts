export { ContainerWatcher, watch, type GateVerdict, type WatchOptions } from './watcher.js';
export type { ContainerEvent, LifecycleType, LostEvent, ReadyEvent, RuntimeRef, WatchMode } from './events.js';
export { decodeStatus } from './events.js';
export { parseRuntimeArgv, isValidContainerId, runtimeNameOf, type RuntimeInvocation, type RuntimeName } from './argv.js';
export { readBundleSpec, parseSpec, specAnnotations, specCandidates, MAX_SPEC_BYTES, type OciSpec } from './spec.js';
export { resolveAnnotations, detectManager, type Manager, type ResolvedMetadata, type PodRef, type ContainerType } from './annotations/index.js';
export { ArgvError, OciNotifyError, SpecError } from './errors.js';
export { discoverRuntimes, KNOWN_RUNTIME_PATHS, type RuntimeBinary } from './runtimes.js';
export { doctor, type DoctorReport } from './doctor.js';
