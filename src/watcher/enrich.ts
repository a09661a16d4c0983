// What a new container is: its bundle's spec, read through the runtime's root while the
// runtime is held, resolved to the pod it belongs to (annotations, docker's own record, the
// pod of its sandbox), and checked again at `create` against what the runtime read.
import { dockerConfigPath, parseDockerConfig, resolveAnnotations, type DockerContainer, type ResolveHints } from '../annotations/index.js';
import { diagnostic, diagnosticFromError, type DiagnosticContext } from '../diagnostics.js';
import { SpecError } from '../errors.js';
import type { ContainerEvent } from '../events.js';
import { procDir, type HostView } from '../host/proc.js';
import { rootAfter } from '../host/runtime-root.js';
import type { HostReads } from '../host/reads.js';
import type { ExecRecord, PrefetchedSpec } from '../native.js';
import { MAX_ANNOTATION_BYTES, MAX_SPEC_BYTES, readBundleSpec, specAnnotations, type OciSpec, type ReadFileInRoot } from '../spec.js';
import type { Session } from './containers.js';
import { containerEvent, diagnosticContext, type Report } from './report.js';
import { SandboxPods } from './sandboxes.js';
import { SpecCheck } from './spec-check.js';

/** config.v2.json is a few KiB; anything near this is not docker's. */
const MAX_DOCKER_CONFIG_BYTES = 1024 * 1024;

interface SpecRead {
  root: string;
  read: ReturnType<typeof readBundleSpec>;
  bytes: Buffer | null;
}

export class Enrich {
  private readonly sandboxPods = new SandboxPods();

  constructor(
    private readonly view: HostView,
    private readonly report: Pick<Report, 'diagnose'>,
    /** whether `precreate` events serialise the spec (it holds the env: secrets) */
    private readonly includeSpec: boolean,
  ) {}

  /** The `precreate` event of a new session, with what its spec tells; session.meta is updated. */
  precreate(session: Session, rec: ExecRecord, held: boolean): ContainerEvent {
    let spec: OciSpec | null = null;
    let specError: ContainerEvent['specError'] = null;
    // Built only when something is to be said: this is the path to the listener.
    const ctx = (): DiagnosticContext => diagnosticContext(session, rec.ts);
    try {
      if (session.bundle === null) {
        throw new SpecError('ERR_SPEC_RELATIVE_BUNDLE', `bundle ${session.invocation.bundle} is relative and the runtime's cwd is gone`, {
          bundle: session.invocation.bundle,
        });
      }
      const { root, read, bytes } = this.readSpec(session.bundle, rec);
      spec = read.spec;
      session.specCheck = SpecCheck.of(root, read.configPath, bytes);
      const { annotations, dropped } = specAnnotations(spec);
      if (dropped.length > 0) {
        const why = `${dropped.length} annotation(s) of ${read.configPath} are not strings or exceed ${MAX_ANNOTATION_BYTES} bytes`;
        this.report.diagnose(diagnostic('ERR_SPEC_ANNOTATIONS_DROPPED', 'degraded', why, ctx(), { configPath: read.configPath, keys: dropped }));
      }
      const hints: ResolveHints = { bundle: session.bundle, id: session.id, conmonName: session.conmonName };
      let resolved = resolveAnnotations(annotations, hints);
      if (resolved.manager === 'docker') resolved = resolveAnnotations(annotations, { ...hints, docker: readDockerContainer(this.view.reads, root, spec, session.id) });
      session.meta = this.sandboxPods.resolve(resolved);
    } catch (err) {
      const d = diagnosticFromError(err, 'ERR_SPEC_READ', 'degraded', ctx());
      specError = { code: d.code, message: d.message };
      this.report.diagnose(d);
    }
    const event = containerEvent('precreate', session, rec.ts, this.view);
    event.specError = specError;
    event.held = held;
    event.heldBy = held ? 'watcher' : rec.watchdog ? 'watchdog' : null;
    Object.defineProperty(event, 'spec', { value: spec, enumerable: this.includeSpec });
    return event;
  }

  /** The runtime (rather than the watcher) read config.json after `precreate`: was it the same file? */
  checkUnchanged(session: Session, ts: bigint): void {
    const check = session.specCheck;
    session.specCheck = null;
    const after = rootAfter(this.view, { mntns: session.runtimeMntns, parent: session.runtimeParent });
    const why = check?.changedSince(this.view.reads.readFileInRoot, after) ?? null;
    if (check == null || why === null) return;
    const message = `${check.configPath} changed between precreate and create (${why}): the metadata reported may not be what the runtime used`;
    this.report.diagnose(diagnostic('ERR_SPEC_CHANGED', 'degraded', message, diagnosticContext(session, ts), { configPath: check.configPath }));
  }

  /** A container exited: a sandbox takes its pod along. */
  exited(session: Session): void {
    this.sandboxPods.forget(session.meta);
  }

  /**
   * The bundle's spec, read through the runtime's root, where its paths resolve, or once the
   * runtime is gone (its root no longer opens) through the root its paths resolve in after it.
   */
  private readSpec(bundle: string, rec: ExecRecord): SpecRead {
    const proc = procDir(this.view, rec);
    const readFile = readAhead(rec.spec ?? null, this.view.reads.readFileInRoot);
    const attempt = (root: string): SpecRead => {
      const reader = SpecCheck.recording(readFile);
      const read = readBundleSpec(bundle, { root, cwd: null, readFile: reader.readFile });
      return { root, read, bytes: reader.last() };
    };
    const after = (): string => rootAfter(this.view, { mntns: rec.mntns, parent: rec.ppid });
    if (proc === null) return attempt(after());
    try {
      return attempt(`${proc}/root`);
    } catch (err) {
      if (this.view.reads.readlink(`${proc}/root`) !== null) throw err;
      return attempt(after());
    }
  }
}

/**
 * The addon's read of config.json, where it is the read asked for (same root, same path, same
 * limit): the addon guessed the bundle from the argv; the argv parser here decides. A read
 * still hanging when the record left is not tried again on this thread: ERR_SPEC_SLOW.
 */
function readAhead(spec: PrefetchedSpec | null, read: ReadFileInRoot): ReadFileInRoot {
  if (spec === null) return read;
  return (root, path, maxBytes) => {
    if (root !== spec.root || path !== spec.path || maxBytes !== MAX_SPEC_BYTES) return read(root, path, maxBytes);
    const { bytes } = spec;
    if (bytes !== null) return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const code = spec.slow ? 'ETIMEDOUT' : spec.error;
    throw Object.assign(new Error(`${code}: ${path} (in ${root})`), { code });
  };
}

/**
 * docker's own record of a container (name, image, labels), read through the runtime's root like
 * the bundle; where it is comes from the spec (annotations/docker.ts). Null when the spec does
 * not point at it or it cannot be read (e.g. another mount namespace).
 */
function readDockerContainer(reads: HostReads, root: string, spec: OciSpec, id: string): DockerContainer | null {
  const path = dockerConfigPath(spec.mounts, id);
  if (path === null) return null;
  try {
    return parseDockerConfig(reads.readFileInRoot(root, path, MAX_DOCKER_CONFIG_BYTES).toString('utf8'));
  } catch {
    return null;
  }
}
