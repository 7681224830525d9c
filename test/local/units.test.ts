/** The API double's pure pieces: patches, selectors, schema validation, JSONPath, ages, routes. */
import { describe, expect, it } from '@jest/globals';
import { humanDuration } from '../../src/local/apiserver/table.js';
import { jsonPathValues } from '../../src/local/apiserver/jsonpath.js';
import { jsonPatch, mergePatch, strategicMergePatch } from '../../src/local/apiserver/patch.js';
import { parseResourcePath } from '../../src/local/apiserver/routes.js';
import { parseFieldSelector, parseLabelSelector } from '../../src/local/apiserver/selectors.js';
import { validateCustomResource } from '../../src/local/apiserver/validation.js';
import { sortVersions } from '../../src/local/apiserver/discovery.js';
import { podQosClass } from '../../src/local/qos.js';
import { podCgroupDir } from '../../src/local/kubelet/cgroup.js';
import { decodeDeleteOptions } from '../../src/local/apiserver/protobuf.js';

describe('patches', () => {
  it('merge patch: nested merge, null deletes, arrays replace', () => {
    expect(mergePatch({ a: { b: 1, c: 2 }, l: [1, 2] }, { a: { b: null, d: 3 }, l: [3] })).toEqual({
      a: { c: 2, d: 3 },
      l: [3],
    });
  });

  it('JSON patch: add, remove, replace, move, copy, test; a failed test or missing path is an error', () => {
    const doc = { a: [1, 2], b: { c: 1 } };
    expect(
      jsonPatch(doc, [
        { op: 'add', path: '/a/-', value: 3 },
        { op: 'remove', path: '/a/0' },
        { op: 'replace', path: '/b/c', value: 2 },
        { op: 'copy', from: '/b', path: '/d' },
        { op: 'move', from: '/b/c', path: '/e' },
        { op: 'test', path: '/e', value: 2 },
      ]),
    ).toEqual({ a: [2, 3], b: {}, d: { c: 2 }, e: 2 });
    expect(() => jsonPatch(doc, [{ op: 'test', path: '/b/c', value: 9 }])).toThrow(
      /testing value \/b\/c failed/,
    );
    expect(() => jsonPatch(doc, [{ op: 'remove', path: '/x/y' }])).toThrow(/missing path/);
    expect(doc).toEqual({ a: [1, 2], b: { c: 1 } });
  });

  it('strategic merge: lists merge by key, $patch delete, $setElementOrder, $retainKeys, primitive deletes', () => {
    const pod = {
      metadata: { finalizers: ['a'] },
      spec: {
        containers: [
          { name: 'x', image: 'i1', env: [{ name: 'A', value: '1' }] },
          { name: 'y', image: 'i2' },
        ],
        strategy: { type: 'Rolling', rolling: { max: 1 } },
      },
    };
    const out = strategicMergePatch(pod, {
      metadata: { finalizers: ['b'], '$deleteFromPrimitiveList/finalizers': ['a'] },
      spec: {
        '$setElementOrder/containers': [{ name: 'z' }, { name: 'x' }],
        containers: [
          { name: 'x', env: [{ name: 'B', value: '2' }] },
          { name: 'y', $patch: 'delete' },
          { name: 'z', image: 'i3' },
        ],
        strategy: { $retainKeys: ['type'], type: 'Recreate' },
      },
    });
    expect(out).toEqual({
      metadata: { finalizers: ['b'] },
      spec: {
        containers: [
          { name: 'z', image: 'i3' },
          {
            name: 'x',
            image: 'i1',
            env: [
              { name: 'A', value: '1' },
              { name: 'B', value: '2' },
            ],
          },
        ],
        strategy: { type: 'Recreate' },
      },
    });
  });
});

describe('selectors', () => {
  it('label selectors: equality and set-based', () => {
    const s = parseLabelSelector('app in (a, b),tier!=db,!legacy,env');
    expect(s.matches({ app: 'a', env: 'x' })).toBe(true);
    expect(s.matches({ app: 'c', env: 'x' })).toBe(false);
    expect(s.matches({ app: 'a', env: 'x', tier: 'db' })).toBe(false);
    expect(s.matches({ app: 'a', env: 'x', legacy: '1' })).toBe(false);
    expect(s.matches({ app: 'a' })).toBe(false);
    expect(parseLabelSelector('').matches(undefined)).toBe(true);
    expect(() => parseLabelSelector('a in b')).toThrow(/unable to parse/);
  });

  it('field selectors: supported labels only', () => {
    const s = parseFieldSelector('spec.nodeName=n1,metadata.name!=x', ['spec.nodeName']);
    expect(s.matches({ metadata: { name: 'p' }, spec: { nodeName: 'n1' } })).toBe(true);
    expect(s.matches({ metadata: { name: 'x' }, spec: { nodeName: 'n1' } })).toBe(false);
    expect(parseFieldSelector('spec.nodeName=', ['spec.nodeName']).matches({ spec: {} })).toBe(true);
    expect(() => parseFieldSelector('spec.other=1', ['spec.nodeName'])).toThrow(
      /field label not supported: spec.other/,
    );
  });
});

describe('schema validation', () => {
  const schema = {
    type: 'object',
    properties: {
      spec: {
        type: 'object',
        required: ['n'],
        properties: {
          n: { type: 'integer', minimum: 0, exclusiveMinimum: true },
          s: { type: 'string', minLength: 2, maxLength: 3, default: 'ab' },
          ios: { 'x-kubernetes-int-or-string': true },
          free: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
          m: { type: 'object', additionalProperties: { type: 'string' } },
          maybe: { type: 'string', nullable: true },
        },
      },
    },
  };

  it('defaults, prunes unknown fields, keeps preserved ones', () => {
    const o = {
      apiVersion: 'g/v',
      kind: 'K',
      metadata: { name: 'x' },
      spec: { n: 1, extra: 1, free: { any: { thing: 1 } }, ios: '50%', m: { a: 'b' }, maybe: null },
    };
    const r = validateCustomResource(o, schema);
    expect(r).toEqual({ causes: [], unknownFields: ['spec.extra'] });
    expect(o.spec).toEqual({
      n: 1,
      s: 'ab',
      free: { any: { thing: 1 } },
      ios: '50%',
      m: { a: 'b' },
      maybe: null,
    });
  });

  it('reports each bad field with the reason the real server uses', () => {
    const r = validateCustomResource({ spec: { n: 0, s: 'abcd', ios: 1.5, m: { a: 1 } } }, schema);
    expect(r.causes.map((c) => [c.field, c.reason])).toEqual([
      ['spec.n', 'FieldValueInvalid'],
      ['spec.s', 'FieldValueTooLong'],
      ['spec.ios', 'FieldValueTypeInvalid'],
      ['spec.m.a', 'FieldValueTypeInvalid'],
    ]);
    expect(r.causes[0]!.message).toBe('Invalid value: 0: spec.n in body should be greater than 0');
  });
});

describe('small pieces', () => {
  it('JSONPath subset', () => {
    const o = {
      status: {
        conditions: [
          { type: 'A', status: 'False' },
          { type: 'Ready', status: 'True' },
        ],
      },
      l: [1, 2],
    };
    expect(jsonPathValues(o, '.status.conditions[?(@.type=="Ready")].status')).toEqual(['True']);
    expect(jsonPathValues(o, '.l[1]')).toEqual([2]);
    expect(jsonPathValues(o, '{.l[*]}')).toEqual([1, 2]);
    expect(jsonPathValues(o, '.missing.x')).toEqual([]);
    expect(() => jsonPathValues(o, '.a..b')).toThrow(/unsupported JSONPath/);
  });

  it('ages as kubectl prints them', () => {
    expect(
      [5e3, 125e3, 600e3, 3 * 3600e3 + 60e3, 50 * 3600e3, 3 * 86400e3 + 3600e3].map(humanDuration),
    ).toEqual(['5s', '2m5s', '10m', '3h1m', '2d2h', '3d1h']);
  });

  it('routes', () => {
    expect(parseResourcePath('/api/v1/namespaces/ns/pods/p/status')).toEqual({
      group: '',
      version: 'v1',
      namespace: 'ns',
      resource: 'pods',
      name: 'p',
      subresource: 'status',
    });
    expect(parseResourcePath('/api/v1/namespaces/ns')).toEqual({
      group: '',
      version: 'v1',
      resource: 'namespaces',
      name: 'ns',
    });
    expect(parseResourcePath('/api/v1/namespaces/ns/status')).toEqual({
      group: '',
      version: 'v1',
      resource: 'namespaces',
      name: 'ns',
      subresource: 'status',
    });
    expect(parseResourcePath('/apis/g.io/v1/widgets')).toEqual({
      group: 'g.io',
      version: 'v1',
      resource: 'widgets',
    });
    expect(parseResourcePath('/version')).toBeUndefined();
  });

  it('version priority, QoS classes and the cgroup layout', () => {
    expect(sortVersions(['v1alpha1', 'v2beta1', 'v1', 'v1beta2', 'v2'])).toEqual([
      'v2',
      'v1',
      'v2beta1',
      'v1beta2',
      'v1alpha1',
    ]);
    const pod = (resources: object): Record<string, unknown> => ({
      spec: { containers: [{ name: 'c', resources }] },
    });
    expect(podQosClass(pod({}))).toBe('BestEffort');
    expect(podQosClass(pod({ requests: { cpu: '1' } }))).toBe('Burstable');
    expect(podQosClass(pod({ limits: { cpu: '1', memory: '1Gi' } }))).toBe('Guaranteed');
    expect(podCgroupDir('/r', 'Guaranteed', 'u')).toBe('/r/kubepods/podu');
    expect(podCgroupDir('/r', 'BestEffort', 'u')).toBe('/r/kubepods/besteffort/podu');
  });

  it('reads a protobuf DeleteOptions as client-go sends it', () => {
    const field = (n: number, b: Buffer): Buffer => Buffer.concat([Buffer.from([(n << 3) | 2, b.length]), b]);
    const pre = field(1, Buffer.from('uid-1'));
    const raw = Buffer.concat([
      Buffer.from([0x08, 30]),
      field(2, pre),
      field(4, Buffer.from('Background')),
      field(5, Buffer.from('All')),
    ]);
    const typeMeta = Buffer.concat([field(1, Buffer.from('v1')), field(2, Buffer.from('DeleteOptions'))]);
    const body = Buffer.concat([Buffer.from('k8s\0', 'latin1'), field(1, typeMeta), field(2, raw)]);
    expect(decodeDeleteOptions(body)).toEqual({
      gracePeriodSeconds: 30,
      preconditions: { uid: 'uid-1' },
      propagationPolicy: 'Background',
      dryRun: ['All'],
    });
    expect(() => decodeDeleteOptions(Buffer.from('nope'))).toThrow(/envelope/);
  });
});
