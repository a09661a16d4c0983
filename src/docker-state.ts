// docker's own record of a container (name, image, labels), read through the runtime's root
// like the bundle. Where it is comes from the spec: see annotations/docker.ts.
import { dockerConfigPath, parseDockerConfig, type DockerContainer } from './annotations/index.js';
import type { HostReads } from './host/reads.js';
import type { OciSpec } from './spec.js';

/** config.v2.json is a few KiB; anything near this is not docker's. */
const MAX_DOCKER_CONFIG_BYTES = 1024 * 1024;

/** Null when the spec does not point at docker's state or it cannot be read (e.g. another mount namespace). */
export function readDockerContainer(reads: HostReads, root: string, spec: OciSpec, id: string): DockerContainer | null {
  const path = dockerConfigPath(spec.mounts, id);
  if (path === null) return null;
  try {
    return parseDockerConfig(reads.readFileInRoot(root, path, MAX_DOCKER_CONFIG_BYTES).toString('utf8'));
  } catch {
    return null;
  }
}
