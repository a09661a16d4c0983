// OCI images built locally, without a registry: one busybox-static layer, one config per image.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { busyboxRootfs } from './bundle.js';
/** containerd names an imported image after this annotation of its index entry. */
const IMAGE_NAME_ANNOTATION = 'io.containerd.image.name';
const ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64' };

export interface ImageSpec {
  /** the full reference, e.g. `ocinotify.local/busybox:1` */
  name: string;
  entrypoint: string[];
  cmd?: string[];
  /** PATH in the image's environment; default /bin */
  path?: string;
  /** makes the image's one layer in an empty directory; default a busybox-static rootfs */
  rootfs?: (dir: string) => void;
}

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
}

/** The busybox image the tests run containers from. */
export const BUSYBOX_IMAGE: ImageSpec = { name: 'ocinotify.local/busybox:1', entrypoint: ['/bin/sh'] };

/** A pause image: its entrypoint sleeps until killed (SIGKILL: it is pid 1 of its pid namespace). */
export const PAUSE_IMAGE: ImageSpec = { name: 'ocinotify.local/pause:1', entrypoint: ['/bin/sleep', '2147483647'] };

/**
 * Writes an OCI image layout holding every image in `images` as one tar archive at `tarPath`,
 * for `ctr images import`. Each image has one uncompressed layer; images with the same rootfs
 * builder share it.
 */
export function buildImageArchive(tarPath: string, images: readonly ImageSpec[]): void {
  const work = mkdtempSync(`${tarPath}.build-`);
  try {
    const layout = join(work, 'layout');
    const blobs = join(layout, 'blobs', 'sha256');
    mkdirSync(blobs, { recursive: true });
    const put = (mediaType: string, data: Buffer): Descriptor => {
      const hex = createHash('sha256').update(data).digest('hex');
      writeFileSync(join(blobs, hex), data);
      return { mediaType, digest: `sha256:${hex}`, size: data.length };
    };
    const layers = new Map<ImageSpec['rootfs'], Descriptor>();
    const layerOf = (build: ImageSpec['rootfs']): Descriptor => {
      if (!layers.has(build)) layers.set(build, put('application/vnd.oci.image.layer.v1.tar', rootfsLayer(join(work, `rootfs-${layers.size}`), build ?? busyboxRootfs)));
      return layers.get(build)!;
    };
    const platform = { architecture: ARCH[process.arch] ?? process.arch, os: 'linux' };
    const manifests = images.map((image) => {
      const layer = layerOf(image.rootfs);
      const config = put('application/vnd.oci.image.config.v1+json', json({
        ...platform,
        config: { Entrypoint: image.entrypoint, Cmd: image.cmd ?? null, Env: [`PATH=${image.path ?? '/bin'}`], WorkingDir: '/' },
        rootfs: { type: 'layers', diff_ids: [layer.digest] },
      }));
      const manifest = put('application/vnd.oci.image.manifest.v1+json', json({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config,
        layers: [layer],
      }));
      return { ...manifest, platform, annotations: { [IMAGE_NAME_ANNOTATION]: image.name } };
    });
    writeFileSync(join(layout, 'oci-layout'), json({ imageLayoutVersion: '1.0.0' }));
    writeFileSync(join(layout, 'index.json'), json({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests,
    }));
    execFileSync('tar', ['-C', layout, '-cf', tarPath, 'oci-layout', 'index.json', 'blobs']);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** An uncompressed tar of the rootfs build makes (so its digest is its diff id). */
function rootfsLayer(rootfs: string, build: (dir: string) => void): Buffer {
  mkdirSync(rootfs);
  build(rootfs);
  const tar = `${rootfs}.tar`;
  execFileSync('tar', ['-C', rootfs, '--numeric-owner', '--owner=0', '--group=0', '-cf', tar, ...readdirSync(rootfs)]);
  return readFileSync(tar);
}

function json(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value));
}
