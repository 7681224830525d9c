/**
 * x86-64 specifics of syscall injection: the user_regs_struct layout that
 * PTRACE_GETREGS/SETREGS use, and the batch stub's machine code.
 * Another architecture (arm64) = another module of this shape.
 */

/** sizeof(struct user_regs_struct): 27 unsigned longs. */
export const REGS_SIZE = 27 * 8;

/** Byte offsets of the registers injection touches (asm/ptrace.h order). */
export const REG = {
  r12: 3 * 8,
  rbx: 5 * 8,
  r10: 7 * 8,
  r9: 8 * 8,
  r8: 9 * 8,
  rax: 10 * 8,
  rdx: 12 * 8,
  rsi: 13 * 8,
  rdi: 14 * 8,
  origRax: 15 * 8,
  rip: 16 * 8,
  cs: 17 * 8,
} as const;

/** The code segment of 64-bit user mode (__USER_CS); a 32-bit (ia32) program runs with 0x23. */
export const USER_CS_64 = 0x33n;

/** Syscall argument registers, in argument order. */
export const ARG_REGS = [REG.rdi, REG.rsi, REG.rdx, REG.r10, REG.r8, REG.r9] as const;

/**
 * Patched at the program's entry point while we work: `int3; syscall; int3`.
 * The first int3 stops the program right after execve returned (so rax is no
 * longer overwritten by execve's return value); afterwards a single injected
 * syscall runs by pointing rip at offset 1 and stops at the second int3.
 */
export const ENTRY_PATCH = Buffer.from([0xcc, 0x0f, 0x05, 0xcc]);
export const ENTRY_SYSCALL_OFFSET = 1n;

/** One batch entry: nr, six args, expected result, result (9 x u64); the stub reads these offsets. */
export const ENTRY_SIZE = 72;
/** Argument `i` (0..5) of an entry. */
export const entryArgOffset = (i: number): number => 8 + i * 8;
export const ENTRY_EXPECT_OFFSET = 56;
export const ENTRY_RESULT_OFFSET = 64;

/** `expected` value meaning "any non-error result" (the kernel's -4095..-1 are errors). */
export const EXPECT_OK = -1;

/**
 * The batch stub, position independent, no stack, no data of its own.
 * In: rbx = first entry, r12 = number of entries. For each entry it loads
 * nr and the six args, runs `syscall`, stores rax into `result`, and checks it:
 * expected == -1 → rax must not be in [-4095, -1]; otherwise rax == expected.
 * Out: int3 with r12 == 0 (all done) or with rbx at the failed entry.
 *
 *   00 loop:  test r12,r12          4d 85 e4
 *   03        je   done             74 43
 *   05        mov  rax,[rbx]        48 8b 03
 *   08        mov  rdi,[rbx+8]      48 8b 7b 08
 *   0c        mov  rsi,[rbx+16]     48 8b 73 10
 *   10        mov  rdx,[rbx+24]     48 8b 53 18
 *   14        mov  r10,[rbx+32]     4c 8b 53 20
 *   18        mov  r8,[rbx+40]      4c 8b 43 28
 *   1c        mov  r9,[rbx+48]      4c 8b 4b 30
 *   20        syscall               0f 05
 *   22        mov  [rbx+64],rax     48 89 43 40
 *   26        mov  rcx,[rbx+56]     48 8b 4b 38   (syscall clobbers rcx: reload)
 *   2a        cmp  rcx,-1           48 83 f9 ff
 *   2e        jne  exact            75 0a
 *   30        cmp  rax,-4095        48 3d 01 f0 ff ff
 *   36        jae  fail             73 11
 *   38        jmp  next             eb 05
 *   3a exact: cmp  rax,rcx          48 39 c8
 *   3d        jne  fail             75 0a
 *   3f next:  add  rbx,72           48 83 c3 48
 *   43        dec  r12              49 ff cc
 *   46        jmp  loop             eb b8
 *   48 done:  int3                  cc
 *   49 fail:  int3                  cc
 */
export const BATCH_STUB = Buffer.from([
  0x4d, 0x85, 0xe4, 0x74, 0x43, 0x48, 0x8b, 0x03, 0x48, 0x8b, 0x7b, 0x08, 0x48, 0x8b, 0x73, 0x10, 0x48, 0x8b,
  0x53, 0x18, 0x4c, 0x8b, 0x53, 0x20, 0x4c, 0x8b, 0x43, 0x28, 0x4c, 0x8b, 0x4b, 0x30, 0x0f, 0x05, 0x48, 0x89,
  0x43, 0x40, 0x48, 0x8b, 0x4b, 0x38, 0x48, 0x83, 0xf9, 0xff, 0x75, 0x0a, 0x48, 0x3d, 0x01, 0xf0, 0xff, 0xff,
  0x73, 0x11, 0xeb, 0x05, 0x48, 0x39, 0xc8, 0x75, 0x0a, 0x48, 0x83, 0xc3, 0x48, 0x49, 0xff, 0xcc, 0xeb, 0xb8,
  0xcc, 0xcc,
]);

/** Reads a register as a signed 64-bit value. */
export function getReg(regs: Buffer, offset: number): bigint {
  return regs.readBigInt64LE(offset);
}

/** Writes a register (two's complement for negatives). */
export function setReg(regs: Buffer, offset: number, value: bigint): void {
  regs.writeBigUInt64LE(BigInt.asUintN(64, value), offset);
}
