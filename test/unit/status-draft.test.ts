/**
 * The pure part of the reconcilers' status helper (src/kube/status.ts):
 * conditions stamped with the generation, the change test, the transitions. Its writes
 * go through a real API server in test/controller/status-writes.test.ts.
 */
import { describe, expect, it } from '@jest/globals';
import type { Checkpoint } from '../../src/api/index.js';
import { StatusDraft, sameJson } from '../../src/kube/status.js';

const T0 = new Date('2026-12-01T10:00:00.000Z');
const T1 = new Date('2026-12-01T10:05:00.000Z');

/** A Checkpoint as the API server returns it: keys sorted, as Go's encoding/json writes maps. */
function stored(): Checkpoint {
  return {
    metadata: { name: 'c', namespace: 'default', generation: 3, resourceVersion: '7' },
    spec: { podName: 'p' },
    status: {
      conditions: [
        {
          lastTransitionTime: '2026-12-01T09:00:00Z',
          message: 'pod p is Pending on n1',
          observedGeneration: 3,
          reason: 'PodNotRunning',
          status: 'False',
          type: 'Scheduled',
        },
      ],
      observedGeneration: 3,
      phase: 'Pending',
    },
  };
}

describe('StatusDraft', () => {
  it('restating what was read is no change, whatever order the keys were built in', () => {
    const d = new StatusDraft(stored(), { now: () => T1 });
    d.status.phase = 'Pending';
    d.status.observedGeneration = 3;
    d.setCondition({
      type: 'Scheduled',
      status: 'False',
      reason: 'PodNotRunning',
      message: 'pod p is Pending on n1',
    });
    // Built in another key order than the stored object's: equal all the same.
    expect(JSON.stringify(d.status)).not.toBe(JSON.stringify(stored().status));
    expect(d.changed()).toBe(false);
    expect(d.transitions()).toEqual([]);
  });

  it('stamps the generation and keeps lastTransitionTime until the status changes', () => {
    const d = new StatusDraft(stored(), { now: () => T1 });
    d.setCondition({ type: 'Scheduled', status: 'False', reason: 'PodNotFound', message: 'gone' });
    const same = d.status.conditions?.[0];
    expect(same).toMatchObject({ observedGeneration: 3, lastTransitionTime: '2026-12-01T09:00:00Z' });
    d.setCondition({ type: 'Scheduled', status: 'True', reason: 'AssignedToNode', message: 'n1' });
    expect(d.status.conditions?.[0]?.lastTransitionTime).toBe('2026-12-01T10:05:00Z');
    expect(d.changed()).toBe(true);
  });

  it('stamps the generation it is given (the agent: the one it worked on)', () => {
    const d = new StatusDraft(stored(), { now: () => T0, generation: 2 });
    d.setCondition({ type: 'Captured', status: 'True', reason: 'Captured', message: 'ok' });
    expect(d.status.conditions?.find((c) => c.type === 'Captured')?.observedGeneration).toBe(2);
  });

  it('never touches the object it was read from', () => {
    const read = Object.freeze(stored());
    const d = new StatusDraft(read, { now: () => T0 });
    d.status.phase = 'Scheduled';
    d.removeCondition('Scheduled');
    expect(read.status?.phase).toBe('Pending');
    expect(read.status?.conditions).toHaveLength(1);
  });

  it('tells the conditions that appeared or changed status or reason, in the order asked', () => {
    const d = new StatusDraft(stored(), { now: () => T0 });
    d.setCondition({ type: 'Scheduled', status: 'False', reason: 'PodNotRunning', message: 'a new message' });
    expect(d.changed()).toBe(true);
    expect(d.transitions()).toEqual([]); // a message alone is no transition
    d.setCondition({ type: 'Ready', status: 'Unknown', reason: 'WaitingForAgent', message: 'w' });
    d.setCondition({ type: 'Scheduled', status: 'True', reason: 'AssignedToNode', message: 'n1' });
    const t = d.transitions(['Ready', 'Scheduled', 'Failed']);
    expect(t.map((x) => `${x.type}=${x.after.status}/${x.after.reason}`)).toEqual([
      'Ready=Unknown/WaitingForAgent',
      'Scheduled=True/AssignedToNode',
    ]);
    expect(t[0]?.before).toBeUndefined();
    expect(t[1]?.before?.reason).toBe('PodNotRunning');
    expect(d.transitions(['Ready']).map((x) => x.type)).toEqual(['Ready']);
  });

  it('removing a condition from a status without any leaves it without a list', () => {
    const d = new StatusDraft({ metadata: { name: 'x' }, spec: { podName: 'p' } });
    d.removeCondition('InvalidSpec');
    expect(d.changed()).toBe(false);
  });

  it('compares against the object it was rebased on', () => {
    const d = new StatusDraft(stored(), { now: () => T0 });
    const patched = { ...stored(), metadata: { ...stored().metadata, resourceVersion: '8' } };
    d.rebase(patched);
    expect(d.read.metadata.resourceVersion).toBe('8');
    expect(d.changed()).toBe(false);
  });
});

describe('sameJson', () => {
  it('ignores key order and undefined properties; arrays keep their order', () => {
    expect(sameJson({ a: 1, b: { c: [1, 2] } }, { b: { c: [1, 2] }, a: 1 })).toBe(true);
    expect(sameJson({ a: 1, image: undefined }, { a: 1 })).toBe(true);
    expect(sameJson({ a: [1, 2] }, { a: [2, 1] })).toBe(false);
    expect(sameJson({ a: 1 }, { a: 1, b: null })).toBe(false);
    expect(sameJson({ a: '1' }, { a: 1 })).toBe(false);
    expect(sameJson([], {})).toBe(false);
    expect(sameJson({ t: new Date(0) }, { t: new Date(1) })).toBe(false);
  });
});
