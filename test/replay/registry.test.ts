import { describe, expect, test } from '@jest/globals';
import { fileTypes } from '../../src/agent/filetypes/index.js';

describe('file type registry and replay', () => {
  test('a type is marked restorable exactly when its module has a restore planner', () => {
    const mismatched = Object.values(fileTypes)
      .filter((ops) => ops.restorable !== ('restore' in ops && typeof ops.restore === 'function'))
      .map((ops) => ops.type);
    expect(mismatched).toEqual([]);
  });
});
