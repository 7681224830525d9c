/**
 * Leak detection and whole-cgroup capture: the engine's public surface for the
 * agent daemon and the CLI. See docs/leaks.md.
 */
export { CgroupLeakError, captureCgroup, tasksToCapture } from './cgroupcapture.js';
export type { CgroupCaptureOptions, CgroupCaptureResult, CgroupCaptureStep } from './cgroupcapture.js';
export { findLeaks, type LeakOptions } from './leaks.js';
export { preflightCgroup, classify, FD_CLASSES } from './preflight.js';
export type { FdClass, FdVerdict, PreflightOptions, PreflightReport } from './preflight.js';
export { LeakError, describeLeak, describePlace, isLeakPolicy, podLabel } from './report.js';
export type {
  Leak,
  LeakObject,
  LeakPolicy,
  LeakReport,
  LeakVia,
  Note,
  NoteKind,
  InsideEnd,
  OutsideEnd,
  PodNamer,
  PodRef,
} from './report.js';
