/** Reading a pipe's buffered bytes without consuming them. */
import { koffi, libc } from './libc.js';
import { SyscallError } from './errors.js';
import { closeFd, pipe2, readFd, tee } from './process.js';

const F_SETPIPE_SZ = 1031;
const O_NONBLOCK = 0o4000;
const SPLICE_F_NONBLOCK = 2;

/**
 * Copies the `count` bytes waiting in the pipe whose read end is `readFd`
 * (an fd of this process) with tee(2) into a private pipe, and reads them there.
 * The original pipe is left exactly as it was.
 */
export function peekPipe(fd: number, count: number): Buffer {
  const [r, w] = pipe2(O_NONBLOCK);
  try {
    if (libc.fcntl(w, F_SETPIPE_SZ, 'int', count) === -1) {
      throw new SyscallError('fcntl', koffi.errno(), `F_SETPIPE_SZ ${count}, fd ${w}`);
    }
    const out = Buffer.alloc(count);
    const copied = tee(fd, w, count, SPLICE_F_NONBLOCK);
    let got = 0;
    while (got < copied) got += readFd(r, out.subarray(got), copied - got);
    return out.subarray(0, got);
  } finally {
    closeFd(r);
    closeFd(w);
  }
}
