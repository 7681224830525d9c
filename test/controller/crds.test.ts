import { describe, expect, it } from '@jest/globals';
import { readFileSync, readdirSync } from 'node:fs';
import * as yaml from 'js-yaml';
import { CATEGORY, CHECKPOINT, GROUP, RESTORE, VERSION } from '../../src/api/names.js';
import { AFTER_CAPTURE, LEAK_POLICIES, POLICY_ACTIONS, RESTORE_FDS } from '../../src/api/types.js';
import { FILE_TYPES } from '../../src/agent/model.js';
import { validateCheckpointSpec, validateRestoreSpec } from '../../src/api/validate.js';

type Schema = { properties?: Record<string, Schema>; enum?: string[]; items?: Schema };
interface Crd {
  spec: {
    group: string;
    names: { kind: string; plural: string; shortNames: string[]; categories: string[] };
    versions: {
      name: string;
      subresources: { status: object };
      additionalPrinterColumns: { name: string }[];
      schema: { openAPIV3Schema: Schema };
    }[];
  };
}

function load(file: string): Crd {
  return yaml.load(readFileSync(new URL(`../../crds/${file}`, import.meta.url), 'utf8')) as Crd;
}

function at(schema: Schema, path: string): Schema {
  return path.split('.').reduce<Schema>((s, p) => (p === '[]' ? s.items! : s.properties![p]!), schema);
}

describe('CRDs', () => {
  it('match the names and enums of src/api', () => {
    const ckpt = load('checkpoints.fdckpt.io.yaml');
    const rst = load('restores.fdckpt.io.yaml');
    for (const [crd, info] of [
      [ckpt, CHECKPOINT],
      [rst, RESTORE],
    ] as const) {
      expect(crd.spec.group).toBe(GROUP);
      expect(crd.spec.names.kind).toBe(info.kind);
      expect(crd.spec.names.plural).toBe(info.plural);
      expect(crd.spec.names.shortNames).toEqual([info.shortName]);
      expect(crd.spec.names.categories).toEqual([CATEGORY]);
      expect(crd.spec.versions[0]!.name).toBe(VERSION);
      expect(crd.spec.versions[0]!.subresources.status).toEqual({});
    }
    const cs = ckpt.spec.versions[0]!.schema.openAPIV3Schema;
    expect(at(cs, 'spec.leakPolicy').enum).toEqual([...LEAK_POLICIES]);
    expect(at(cs, 'spec.afterCapture').enum).toEqual([...AFTER_CAPTURE]);
    expect(at(cs, 'spec.ignore.types.[]').enum).toEqual([...FILE_TYPES]);
    const rs = rst.spec.versions[0]!.schema.openAPIV3Schema;
    expect(at(rs, 'spec.fds').enum).toEqual([...RESTORE_FDS]);
    expect(at(rs, 'spec.policy.rules.[].action').enum).toEqual([...POLICY_ACTIONS]);
    expect(at(rs, 'spec.policy.rules.[].type').enum).toEqual([...FILE_TYPES]);
    expect(ckpt.spec.versions[0]!.additionalPrinterColumns.map((c) => c.name)).toEqual([
      'Pod',
      'Node',
      'Phase',
      'FDs',
      'Leaks',
      'Problems',
      'Checkpointable',
      'Age',
    ]);
  });

  it('every sample is valid by the controller rules', () => {
    const dir = new URL('../../deploy/samples/', import.meta.url);
    for (const file of readdirSync(dir)) {
      const doc = yaml.load(readFileSync(new URL(file, dir), 'utf8')) as { kind: string; spec: never };
      if (doc.kind === 'Checkpoint') expect(validateCheckpointSpec(doc.spec)).toEqual([]);
      if (doc.kind === 'Restore') expect(validateRestoreSpec(doc.spec)).toEqual([]);
    }
  });

  it('validation names the field and the reason', () => {
    expect(
      validateCheckpointSpec({
        podName: 'Bad_Name',
        leakPolicy: 'Maybe' as never,
        ttlSecondsAfterFinished: -1,
      }),
    ).toEqual([
      'spec.podName: "Bad_Name" is not a valid DNS-1123 subdomain',
      'spec.leakPolicy: "Maybe" is not one of Fail, Warn, Ignore',
      'spec.ttlSecondsAfterFinished: -1 must be a non-negative integer',
    ]);
    expect(validateRestoreSpec({ checkpointName: 'c', target: { podName: 'p', newPod: {} } })).toEqual([
      'spec.target: exactly one of podName and newPod must be set',
    ]);
    expect(
      validateRestoreSpec({
        checkpointName: 'c',
        target: { podName: 'p' },
        policy: {
          rules: [
            { action: 'remap', from: '/a' },
            { action: 'skip', to: '/b', type: 'pipe' },
          ],
        },
      }),
    ).toEqual([
      'spec.policy.rules[0].to: remap needs an absolute path prefix',
      'spec.policy.rules[1].to: belongs to action remap only',
    ]);
  });
});
