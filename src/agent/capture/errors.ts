/** Capture failed as a whole (a process vanished, an fd changed under us). */
export class CaptureError extends Error {
  override readonly name = 'CaptureError';
}
