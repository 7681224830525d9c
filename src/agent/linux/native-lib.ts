/**
 * The engine's own shared library (native/: the host scan's fd links, capture's table
 * read), found beside the code in every layout and loaded once, on first use, so that
 * commands that make none of its calls never need it.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { koffi } from './libc.js';

const LIB_NAME = 'libfdckpt-scan.so';

/**
 * Path of the library: $FDCKPT_SCAN_LIB, else native/build/libfdckpt-scan.so in the
 * nearest enclosing directory that has one (src/, dist/ and build/ layouts), as replay
 * finds fdckpt-hold.
 */
export function scanLibPath(): string {
  const fromEnv = process.env['FDCKPT_SCAN_LIB'];
  if (fromEnv) {
    if (!existsSync(fromEnv)) throw new Error(`host scan library ${fromEnv} ($FDCKPT_SCAN_LIB) is missing`);
    return fromEnv;
  }
  const here = path.dirname(fileURLToPath(import.meta.url));
  let dir = here;
  for (let i = 0; i < 6; i++) {
    const candidate = path.join(dir, 'native', 'build', LIB_NAME);
    if (existsSync(candidate)) return candidate;
    dir = path.dirname(dir);
  }
  throw new Error(
    `host scan library native/build/${LIB_NAME} is missing (looked in the directories above ${here}): ` +
      'run `npm run build` (or `npm run build:native`), or set FDCKPT_SCAN_LIB',
  );
}

let lib: ReturnType<typeof koffi.load> | undefined;

/** The loaded library (loaded on the first call). */
export function nativeLib(): ReturnType<typeof koffi.load> {
  lib ??= koffi.load(scanLibPath());
  return lib;
}
