// Every read the watcher makes of the host goes through one of these six calls: files under a
// root (bundles, pid files, docker's records), the heads of /proc and state files, links, stats
// and directory listings. The live implementation reads the machine; a recorded one replays
// what a real run read, so the watcher's logic runs in tests without root (test/replay/).
import { closeSync, openSync, readdirSync, readlinkSync, readSync, realpathSync, statSync } from 'node:fs';
import { loadAddon } from '../native.js';

export interface FileStat {
  /** Exact, as the kernel's unsigned 64 bits: an overlay with xino puts its layer in an inode number's top bits, past a double's 53. */
  dev: bigint;
  ino: bigint;
  nlink: number;
  size: number;
  isFile: boolean;
  isDirectory: boolean;
}

export interface FileHead {
  bytes: Buffer;
  /** false when the file has more than was read */
  whole: boolean;
}

export interface DirEntry {
  name: string;
  isDirectory: boolean;
}

export interface HostReads {
  /**
   * `path` as seen from `root` (e.g. /proc/PID/root), at most maxBytes, resolved inside root: no
   * symlink leads out, no FIFO blocks. Throws an Error whose `code` is an errno name: ENOENT,
   * ELOOP, EXDEV, EFBIG, ENOTREG, EISDIR, EACCES...
   */
  readFileInRoot(root: string, path: string, maxBytes: number): Buffer;
  /** Up to maxBytes of a file (procfs, state files), or null when it cannot be opened or read. */
  readHead(path: string, maxBytes: number): FileHead | null;
  readlink(path: string): string | null;
  /** stat(2), following symlinks; null when it fails. */
  stat(path: string): FileStat | null;
  realpath(path: string): string | null;
  readdir(path: string): DirEntry[] | null;
}

const CHUNK = 64 * 1024;

/** Reads in chunks: most heads are a few bytes long, and maxBytes may be megabytes. */
function readHead(path: string, maxBytes: number): FileHead | null {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return null;
  }
  try {
    const chunks: Buffer[] = [];
    let got = 0;
    for (;;) {
      const buf = Buffer.allocUnsafe(Math.min(CHUNK, maxBytes + 1 - got));
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      chunks.push(n === buf.length ? buf : buf.subarray(0, n));
      got += n;
      if (got > maxBytes) break;
    }
    const bytes = Buffer.concat(chunks, got);
    return got > maxBytes ? { bytes: bytes.subarray(0, maxBytes), whole: false } : { bytes, whole: true };
  } catch {
    return null;
  } finally {
    closeSync(fd);
  }
}

function orNull<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R | null {
  return (...args) => {
    try {
      return fn(...args);
    } catch {
      return null;
    }
  };
}

/** The machine itself. The addon is loaded on the first read under a root, not on import. */
export const liveReads: HostReads = {
  readFileInRoot: (root, path, maxBytes) => loadAddon().readFileInRoot(root, path, maxBytes),
  readHead,
  readlink: orNull((path: string) => readlinkSync(path)),
  stat: orNull((path: string): FileStat => {
    // node's bigint stats are signed 64-bit
    const st = statSync(path, { bigint: true });
    return {
      dev: BigInt.asUintN(64, st.dev),
      ino: BigInt.asUintN(64, st.ino),
      nlink: Number(st.nlink),
      size: Number(st.size),
      isFile: st.isFile(),
      isDirectory: st.isDirectory(),
    };
  }),
  realpath: orNull((path: string) => realpathSync(path)),
  readdir: orNull((path: string) =>
    readdirSync(path, { withFileTypes: true }).map((d) => ({ name: d.name, isDirectory: d.isDirectory() })),
  ),
};
