import { describe, expect, test } from '@jest/globals';
import { DETECTION_ORDER, fileTypes, isRestorable } from '../../src/agent/filetypes/index.js';
import { PATH_TYPES } from '../../src/agent/image/paths.js';

const position = (type: string): number => DETECTION_ORDER.findIndex((o) => o.type === type);

describe('file type registry', () => {
  test('detection order is derived from the types: every registered type once, anon alone last', () => {
    expect(DETECTION_ORDER.map((o) => o.type).sort()).toEqual(Object.keys(fileTypes).sort());
    expect(DETECTION_ORDER.filter((o) => o.detectTier === 'fallback').map((o) => o.type)).toEqual(['anon']);
    expect(DETECTION_ORDER.at(-1)?.type).toBe('anon');
  });

  test('specific types come before the general ones that would also accept their fds', () => {
    // A memfd is a regular tmpfs file; a tty, a directory and a FIFO are paths too.
    for (const special of ['memfd', 'tty', 'directory', 'fifo'])
      expect([special, position(special) < position('regular')]).toEqual([special, true]);
  });

  test('a type is restorable exactly when its module plans its restore', () => {
    const restorable = Object.keys(fileTypes).filter((t) => isRestorable(t as keyof typeof fileTypes));
    expect(restorable.sort()).toEqual(
      [
        'directory',
        'eventfd',
        'eventpoll',
        'fifo',
        'inotify',
        'memfd',
        'pipe',
        'regular',
        'signalfd',
        'socket',
        'timerfd',
      ].sort(),
    );
  });

  test('the types reopened by path are the ones whose image paths the reader checks', () => {
    // image/ cannot import filetypes/ (filetypes → replay → image): its list must agree.
    const byPath = Object.values(fileTypes).filter((o) => 'byPath' in o && o.byPath !== undefined);
    expect(byPath.map((o) => o.type).sort()).toEqual([...PATH_TYPES].sort());
  });
});
