/**
 * `fdckpt local`: writes the kubeconfig, prints `ready`, serves through it, and stops
 * cleanly on SIGTERM. Run in process through the CLI's own main().
 */
import { afterAll, describe, expect, it, jest } from '@jest/globals';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import { eventually } from './support.js';

const work = mkdtempSync(join(tmpdir(), 'fdckpt-cli-local-'));

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('fdckpt local', () => {
  it('prints ready, serves through the kubeconfig it wrote, and stops on SIGTERM', async () => {
    const out: string[] = [];
    const stdout = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      out.push(String(chunk));
      return true;
    });
    const stderr = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const kubeconfig = join(work, 'kubeconfig');
    try {
      const running = main([
        'local',
        '--kubeconfig',
        kubeconfig,
        '--nodes',
        '2',
        '--api-only',
        '--data-dir',
        join(work, 'data'),
      ]);
      await eventually(() => (out.includes('ready\n') ? true : undefined), 'ready');
      const kc = new KubeConfig();
      kc.loadFromFile(kubeconfig);
      const nodes = await kc.makeApiClient(CoreV1Api).listNode();
      expect(nodes.items.map((n) => n.metadata?.name)).toEqual(['local-node-1', 'local-node-2']);
      process.emit('SIGTERM', 'SIGTERM');
      expect(await running).toBe(0);
      await expect(kc.makeApiClient(CoreV1Api).listNode()).rejects.toThrow();
    } finally {
      stdout.mockRestore();
      stderr.mockRestore();
    }
  });

  it('rejects bad usage with exit code 2', async () => {
    const stderr = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      expect(await main(['local'])).toBe(2);
      expect(await main(['local', '--kubeconfig', join(work, 'k'), '--nodes', 'many'])).toBe(2);
    } finally {
      stderr.mockRestore();
    }
  });
});
