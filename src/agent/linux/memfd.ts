/**
 * What capture reads from a memfd through its pidfd_getfd copy: the seals and
 * the contents. pread, so that the shared file offset is left where it was.
 */
import { lib, koffi } from './libc.js';
import { SyscallError } from './errors.js';

const F_GET_SEALS = 1034;

const c = {
  fcntl: lib.func('int fcntl(int fd, int cmd, ...)') as (...a: unknown[]) => number,
  pread: lib.func('long pread(int fd, _Out_ uint8_t *buf, size_t n, long offset)') as (
    fd: number,
    buf: Buffer,
    n: number,
    offset: number,
  ) => number | bigint,
};

/** fcntl(F_GET_SEALS): F_SEAL_* bits (a memfd made without MFD_ALLOW_SEALING shows F_SEAL_SEAL). */
export function getSeals(fd: number): number {
  const r = c.fcntl(fd, F_GET_SEALS);
  if (r === -1) throw new SyscallError('fcntl', koffi.errno(), `F_GET_SEALS, fd ${fd}`);
  return r;
}

/** The first `size` bytes of the file, read with pread from offset 0 (fewer if it shrank meanwhile). */
export function preadAll(fd: number, size: number): Buffer {
  const buf = Buffer.allocUnsafe(size);
  let done = 0;
  while (done < size) {
    const n = Number(c.pread(fd, buf.subarray(done), size - done, done));
    if (n === -1) {
      const errno = koffi.errno();
      if (errno === 4) continue; // EINTR
      throw new SyscallError('pread', errno, `fd ${fd}`);
    }
    if (n === 0) break;
    done += n;
  }
  return buf.subarray(0, done);
}
