/**
 * Loggers for the operator components tests start: silent, unless FDCKPT_TEST_LOG names a
 * file, which then gets every component's JSON lines — how a failing e2e test is read.
 */
import { appendFileSync } from 'node:fs';
import { jsonLogger, silentLogger, type Logger } from '../../src/kube/log.js';

/** The logger for one component (`controller`, `agent local-node-1`, …). */
export function testLogger(component: string): Logger {
  const file = process.env['FDCKPT_TEST_LOG'];
  // debug: a failing test's log should hold every reconcile.
  return file
    ? jsonLogger(component, { level: 'debug', write: (l) => appendFileSync(file, l) })
    : silentLogger;
}

/** A line logger for the control plane and kubelets (startControlPlane's `log`), or undefined. */
export function testLineLogger(): ((line: string) => void) | undefined {
  const file = process.env['FDCKPT_TEST_LOG'];
  return file ? (line) => appendFileSync(file, `${new Date().toISOString()} ${line}\n`) : undefined;
}
