// Whether a bundle's config.json is still what `precreate` read when `create` comes. The
// runtime reads it only after the gate has answered: a file swapped in between would make the
// gate's decision and the reported metadata about another spec than the one the runtime used.
// A spec of a usual size is kept as it is (a few kB, until `create`): hashing it on the way to
// `precreate` cost more than comparing ever does. A big one is kept as its digest.
import { createHash } from 'node:crypto';
import { MAX_SPEC_BYTES, type ReadFileInRoot } from '../spec.js';

/** Specs up to this size are compared byte for byte, larger ones by SHA-256. */
const KEEP_BYTES = 256 * 1024;

function fingerprint(bytes: Buffer): Buffer {
  return bytes.length <= KEEP_BYTES ? bytes : createHash('sha256').update(bytes).digest();
}

export class SpecCheck {
  private constructor(
    readonly root: string,
    readonly configPath: string,
    private readonly fingerprint: Buffer,
  ) {}

  /** A reader that keeps the last file it returned, for SpecCheck.of. */
  static recording(readFile: ReadFileInRoot): { readFile: ReadFileInRoot; last: () => Buffer | null } {
    let last: Buffer | null = null;
    return {
      readFile: (root, path, maxBytes) => (last = readFile(root, path, maxBytes)),
      last: () => last,
    };
  }

  static of(root: string, configPath: string, bytes: Buffer | null): SpecCheck | null {
    return bytes === null ? null : new SpecCheck(root, configPath, fingerprint(bytes));
  }

  /**
   * null when the file still holds the same bytes, else what differs. Read through the same root
   * as before, or fallbackRoot once that is gone (the runtime has exited).
   */
  changedSince(readFile: ReadFileInRoot, fallbackRoot: string): string | null {
    let bytes: Buffer;
    try {
      bytes = readFile(this.root, this.configPath, MAX_SPEC_BYTES);
    } catch {
      try {
        bytes = readFile(fallbackRoot, this.configPath, MAX_SPEC_BYTES);
      } catch (err) {
        return `it can no longer be read (${String((err as { code?: unknown }).code ?? 'error')})`;
      }
    }
    return fingerprint(bytes).equals(this.fingerprint) ? null : 'its content differs';
  }
}
