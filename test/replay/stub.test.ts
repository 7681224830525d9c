/**
 * The batch stub is hand-assembled machine code. This test reassembles the
 * listing documented beside it with the system assembler (binutils: present
 * wherever the native launcher builds) and checks both agree with the bytes.
 */
import { describe, expect, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BATCH_STUB } from '../../src/agent/linux/arch/x86_64-regs.js';

const source = fileURLToPath(new URL('../../src/agent/linux/arch/x86_64-regs.ts', import.meta.url));
const LINE = /^ \*\s+([0-9a-f]{2}) (?:(\w+):)?\s+(.+?)\s{2,}((?:[0-9a-f]{2} )*[0-9a-f]{2})(?:\s+\(.*\))?$/;

function haveAssembler(): boolean {
  try {
    execFileSync('as', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe('x86-64 batch stub', () => {
  const listing = fs
    .readFileSync(source, 'utf8')
    .split('\n')
    .map((l) => LINE.exec(l))
    .filter((m): m is RegExpExecArray => m !== null);

  test('the documented listing has the stub bytes at the documented offsets', () => {
    const bytes: number[] = [];
    for (const m of listing) {
      expect({ offset: parseInt(m[1]!, 16), insn: m[3] }).toEqual({ offset: bytes.length, insn: m[3] });
      bytes.push(
        ...m[4]!
          .trim()
          .split(' ')
          .map((h) => parseInt(h, 16)),
      );
    }
    expect(Buffer.from(bytes).equals(BATCH_STUB)).toBe(true);
  });

  test('the system assembler produces the same bytes from the listing', () => {
    if (!haveAssembler()) {
      if (process.env['CI'] === 'true')
        throw new Error('`as` (binutils) is required to check the stub in CI');
      console.warn('skipped: no `as` on this machine');
      return;
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stub-'));
    try {
      const asm = [
        '.intel_syntax noprefix',
        ...listing.map((m) => `${m[2] ? `${m[2]}: ` : ''}${m[3]!.replace(/\[/g, 'QWORD PTR [')}`),
      ];
      fs.writeFileSync(path.join(dir, 's.s'), `${asm.join('\n')}\n`);
      execFileSync('as', ['--64', '-o', path.join(dir, 's.o'), path.join(dir, 's.s')]);
      execFileSync('objcopy', [
        '-O',
        'binary',
        '-j',
        '.text',
        path.join(dir, 's.o'),
        path.join(dir, 's.bin'),
      ]);
      expect(fs.readFileSync(path.join(dir, 's.bin')).equals(BATCH_STUB)).toBe(true);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
