/**
 * Where the real Kubernetes components live: $FDCKPT_KUBE_BIN when set, else whatever
 * scripts/kube/build.sh prints — it builds the pinned versions from Go modules once per
 * machine and answers from its cache after that.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The components a local cluster runs, by binary name. */
export const KUBE_COMMANDS = [
  'etcd',
  'kube-apiserver',
  'kube-controller-manager',
  'kube-scheduler',
  'kubelet',
  'kubectl',
] as const;
export type KubeCommand = (typeof KUBE_COMMANDS)[number];

/** The checkout: the nearest directory up with package.json and scripts/kube/build.sh. */
export function checkoutRoot(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'scripts', 'kube', 'build.sh')))
      return dir;
    const up = dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

let cached: string | undefined;

/**
 * The directory holding every binary of {@link KUBE_COMMANDS}, building them first if
 * needed (the build's progress goes to stderr). Throws with what is missing.
 */
export function kubeBinDir(): string {
  if (cached) return cached;
  let dir = process.env['FDCKPT_KUBE_BIN'];
  if (!dir) {
    const root = checkoutRoot();
    if (!root)
      throw new Error(
        'no Kubernetes binaries: set FDCKPT_KUBE_BIN (no scripts/kube/build.sh here to build them)',
      );
    const r = spawnSync('bash', [join(root, 'scripts', 'kube', 'build.sh')], {
      stdio: ['ignore', 'pipe', 'inherit'],
      encoding: 'utf8',
    });
    if (r.status !== 0)
      throw new Error(`scripts/kube/build.sh failed (${r.error?.message ?? `status ${r.status}`})`);
    dir = r.stdout.trim().split('\n').pop() ?? '';
  }
  const missing = KUBE_COMMANDS.filter((c) => !existsSync(join(dir, c)));
  if (missing.length) throw new Error(`Kubernetes binaries missing in ${dir}: ${missing.join(', ')}`);
  cached = dir;
  return dir;
}

/** The path of one component's binary. */
export function kubeBinary(command: KubeCommand): string {
  return join(kubeBinDir(), command);
}
