import { posix } from 'node:path';
import { SpecError, type SpecErrorCode } from './errors.js';

/** Larger config.json files are refused unread: a runtime would not need one that big. */
export const MAX_SPEC_BYTES = 16 * 1024 * 1024;
/** Real specs nest less than 10 deep. */
export const MAX_SPEC_DEPTH = 256;
export const MAX_ANNOTATION_BYTES = 64 * 1024;

export interface OciSpec {
  ociVersion?: string;
  annotations?: Record<string, string> | null;
  process?: {
    terminal?: boolean;
    user?: { uid?: number; gid?: number; [k: string]: unknown };
    args?: string[];
    env?: string[];
    cwd?: string;
    [k: string]: unknown;
  };
  root?: { path?: string; readonly?: boolean };
  hostname?: string;
  hooks?: unknown;
  linux?: unknown;
  [k: string]: unknown;
}

/**
 * Reads `path` as seen from `root` (e.g. /proc/PID/root), at most maxBytes. Throws an Error
 * whose `code` is an errno name: ENOENT, ELOOP, EXDEV, EFBIG, ENOTREG, EISDIR, EACCES...
 */
export type ReadFileInRoot = (root: string, path: string, maxBytes: number) => Buffer;

export interface ReadBundleSpecOptions {
  root: string;
  /** The runtime's cwd, against which a relative bundle is resolved. */
  cwd: string | null;
  readFile: ReadFileInRoot;
  maxBytes?: number;
}

const CONFIG_FILE = 'config.json';
/** podman and cri-o keep config.json in the container's `userdata` directory. */
const USERDATA_DIR = 'userdata';

/** Errno codes that mean "not at this candidate, try the next". */
const MISSING_ERRNOS: ReadonlySet<string> = new Set(['ENOENT', 'ENOTDIR']);

const READ_ERRORS: ReadonlyMap<string, SpecErrorCode> = new Map([
  ['ELOOP', 'ERR_SPEC_SYMLINK'],
  ['EXDEV', 'ERR_SPEC_SYMLINK'],
  ['EFBIG', 'ERR_SPEC_TOO_LARGE'],
  ['ENOTREG', 'ERR_SPEC_NOT_REGULAR'],
  ['EISDIR', 'ERR_SPEC_NOT_REGULAR'],
  ['EACCES', 'ERR_SPEC_ACCESS'],
  ['EPERM', 'ERR_SPEC_ACCESS'],
  ['ETIMEDOUT', 'ERR_SPEC_SLOW'],
]);

const utf8 = new TextDecoder('utf-8', { fatal: true });

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;

/** Absolute, lexically normalised paths where the bundle's config.json may be, in order. */
export function specCandidates(bundle: string, cwd: string | null): string[] {
  const dir = bundleDirectory(bundle, cwd);
  return [posix.join(dir, CONFIG_FILE), posix.join(dir, USERDATA_DIR, CONFIG_FILE)];
}

function bundleDirectory(bundle: string, cwd: string | null): string {
  if (posix.isAbsolute(bundle)) return posix.normalize(bundle);
  if (cwd === null || !posix.isAbsolute(cwd)) {
    throw new SpecError('ERR_SPEC_RELATIVE_BUNDLE', 'a relative bundle needs the absolute cwd of the runtime', {
      bundle,
      cwd,
    });
  }
  return posix.join(cwd, bundle);
}

export function readBundleSpec(bundle: string, opts: ReadBundleSpecOptions): { spec: OciSpec; configPath: string } {
  const maxBytes = opts.maxBytes ?? MAX_SPEC_BYTES;
  const candidates = specCandidates(bundle, opts.cwd);
  for (const configPath of candidates) {
    const bytes = readCandidate(opts, configPath, maxBytes);
    if (bytes !== null) return { spec: parseSpec(bytes, configPath, maxBytes), configPath };
  }
  throw new SpecError('ERR_SPEC_NOT_FOUND', `no ${CONFIG_FILE} in bundle ${bundle}`, { bundle, candidates });
}

/** The file's bytes, or null when it does not exist. */
function readCandidate(opts: ReadBundleSpecOptions, configPath: string, maxBytes: number): Buffer | null {
  try {
    return opts.readFile(opts.root, configPath, maxBytes);
  } catch (error) {
    const errno = errnoOf(error);
    if (errno !== null && MISSING_ERRNOS.has(errno)) return null;
    const code = (errno !== null ? READ_ERRORS.get(errno) : undefined) ?? 'ERR_SPEC_READ';
    // Named, not stringified: a reader's error could say anything, or refuse to be a string.
    const what = errno ?? (error instanceof Error ? error.name : typeof error);
    throw new SpecError(code, `cannot read ${configPath}: ${what}`, { configPath, errno }, {
      cause: error,
    });
  }
}

function errnoOf(error: unknown): string | null {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : null;
}

export function parseSpec(bytes: Buffer, configPath: string, maxBytes: number = MAX_SPEC_BYTES): OciSpec {
  const details = { configPath, bytes: bytes.length };
  if (bytes.length === 0) throw new SpecError('ERR_SPEC_EMPTY', `${configPath} is empty`, details);
  if (bytes.length > maxBytes) {
    throw new SpecError('ERR_SPEC_TOO_LARGE', `${configPath} is larger than ${maxBytes} bytes`, details);
  }
  const text = decodeUtf8(bytes, configPath);
  // Refused before JSON.parse builds it: JSON.stringify or structuredClone of a value nested
  // 100,000 deep throws a RangeError, and so may any recursive walk by the caller.
  if (nestingExceeds(bytes, MAX_SPEC_DEPTH)) {
    throw new SpecError('ERR_SPEC_TOO_DEEP', `${configPath} nests deeper than ${MAX_SPEC_DEPTH}`, details);
  }
  const value = parseJson(text, configPath);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new SpecError('ERR_SPEC_NOT_OBJECT', `${configPath} is not a JSON object`, details);
  }
  return value as OciSpec;
}

function decodeUtf8(bytes: Buffer, configPath: string): string {
  try {
    return utf8.decode(bytes);
  } catch (error) {
    throw new SpecError('ERR_SPEC_NOT_UTF8', `${configPath} is not UTF-8`, { configPath }, { cause: error });
  }
}

function parseJson(text: string, configPath: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new SpecError('ERR_SPEC_INVALID_JSON', `${configPath} is not valid JSON`, { configPath }, { cause: error });
  }
}

/**
 * One linear pass over the bytes counting open brackets outside strings. UTF-8 continuation
 * bytes are all >= 0x80, so they never look like the ASCII structural characters.
 */
function nestingExceeds(bytes: Uint8Array, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i];
    if (inString) {
      if (byte === BACKSLASH) i++;
      else if (byte === QUOTE) inString = false;
    } else if (byte === QUOTE) {
      inString = true;
    } else if (byte === OPEN_BRACE || byte === OPEN_BRACKET) {
      if (++depth > limit) return true;
    } else if (byte === CLOSE_BRACE || byte === CLOSE_BRACKET) {
      depth--;
    }
  }
  return false;
}

/** The string-valued annotations, each at most MAX_ANNOTATION_BYTES; `dropped` names the rest. */
export function specAnnotations(spec: OciSpec): { annotations: Record<string, string>; dropped: string[] } {
  const source: unknown = spec.annotations;
  if (typeof source !== 'object' || source === null || Array.isArray(source)) return { annotations: {}, dropped: [] };
  const kept: [string, string][] = [];
  const dropped: string[] = [];
  for (const [key, value] of Object.entries(source)) {
    if (typeof value === 'string' && Buffer.byteLength(value, 'utf8') <= MAX_ANNOTATION_BYTES) kept.push([key, value]);
    else dropped.push(key);
  }
  // fromEntries defines own properties, so a `__proto__` key stays a plain key.
  return { annotations: Object.fromEntries(kept), dropped };
}
