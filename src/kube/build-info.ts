/**
 * `fdckpt_build_info{version,node_version} 1` on the controller's and the agent's
 * /metrics: what is running, for dashboards that join on it and for spotting a
 * rollout half done (two versions answering at once).
 */
import { readFileSync } from 'node:fs';
import { Gauge, type Registry } from 'prom-client';

/** The package's version: package.json sits two levels up from src/kube and dist/kube alike. */
export function fdckptVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version?: string;
    };
    return pkg.version ?? 'unknown';
  } catch {
    // An image built without package.json still serves its metrics.
    return 'unknown';
  }
}

/** Registers the build info gauge, set to 1 with this build's labels. */
export function registerBuildInfo(registry: Registry): void {
  new Gauge({
    name: 'fdckpt_build_info',
    help: 'Always 1; the labels say which fdckpt and which Node.js run this component.',
    labelNames: ['version', 'node_version'],
    registers: [registry],
  }).set({ version: fdckptVersion(), node_version: process.version }, 1);
}
