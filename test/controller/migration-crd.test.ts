/** The Migration CRD matches src/api/migration.ts: names, phases, and what validation refuses. */
import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import * as yaml from 'js-yaml';
import {
  CATEGORY,
  GROUP,
  LEAK_POLICIES,
  MIGRATION,
  VERSION,
  validateMigrationSpec,
} from '../../src/api/index.js';
import type { MigrationPhase } from '../../src/api/index.js';

type Schema = { properties?: Record<string, Schema>; enum?: string[]; type?: string };
const crd = yaml.load(
  readFileSync(new URL('../../crds/migrations.fdckpt.io.yaml', import.meta.url), 'utf8'),
) as {
  spec: {
    group: string;
    names: { kind: string; plural: string; singular: string; shortNames: string[]; categories: string[] };
    versions: { name: string; schema: { openAPIV3Schema: Schema } }[];
  };
};

describe('Migration CRD', () => {
  it('names and enums match src/api', () => {
    expect(crd.spec.group).toBe(GROUP);
    expect(crd.spec.versions[0]?.name).toBe(VERSION);
    expect(crd.spec.names).toMatchObject({
      kind: MIGRATION.kind,
      plural: MIGRATION.plural,
      singular: MIGRATION.singular,
      shortNames: [MIGRATION.shortName],
      categories: [CATEGORY],
    });
    const root = crd.spec.versions[0]!.schema.openAPIV3Schema.properties!;
    expect(root['spec']!.properties!['leakPolicy']!.enum).toEqual([...LEAK_POLICIES]);
    expect(root['spec']!.properties!['listenFds']).toMatchObject({ type: 'boolean' });
    const phases: MigrationPhase[] = [
      'Pending',
      'Checkpointing',
      'Replacing',
      'Restoring',
      'Finishing',
      'RollingBack',
      'Succeeded',
      'Failed',
    ];
    expect(root['status']!.properties!['phase']!.enum).toEqual(phases);
  });

  it('validation names each bad field', () => {
    expect(validateMigrationSpec({ podName: 'web-1' })).toEqual([]);
    expect(
      validateMigrationSpec({
        podName: 'Bad Pod',
        targetNode: '',
        leakPolicy: 'Sometimes' as never,
        timeoutSeconds: 0,
        listenFds: 'yes' as never,
        policy: { rules: [{ action: 'explode' as never }] },
      }),
    ).toEqual([
      'spec.podName: "Bad Pod" is not a pod name',
      'spec.targetNode: "" is not a node name',
      'spec.leakPolicy: "Sometimes" is not one of Fail, Warn, Ignore',
      'spec.listenFds: must be true or false',
      'spec.policy.rules[0].action: "explode" is not one of fail, skip, devnull, remap, inherit',
      'spec.timeoutSeconds: 0 is not a positive integer',
    ]);
  });
});
