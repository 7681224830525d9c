/** The README's first command ends in `fdckpt demo`: it must work and prove both round trips. */
import { expect, test } from '@jest/globals';
import { fdckpt } from '../support/cli.js';
import { describeWithKubectl } from '../support/kubectl.js';

describeWithKubectl('demo.test')('the README first command', () => {
  test('fdckpt demo: the engine round trip, then Checkpoint and Restore of a pod with kubectl', () => {
    const r = fdckpt('demo');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const same = 'no difference in fd numbers, flags, offsets, close-on-exec or sharing';
    expect(r.stdout.split(same)).toHaveLength(3); // engine, then operator
    expect(r.stdout).toContain("restored: read 'level=3' through fd 9");
    expect(r.stdout).toContain('checkpoint.fdckpt.io/fd-demo condition met');
    expect(r.stdout).toMatch(/fd-demo\s+fd-demo\s+local-node-1\s+Ready\s+6\s+0/);
    expect(r.stdout).toContain('restore.fdckpt.io/fd-demo condition met');
  }, 180_000);
});
