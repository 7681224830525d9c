/**
 * Where a local node keeps its files, shared by the process kubelet (which writes them) and
 * the kubelet's log server (which serves pods/log from them to the API server).
 */
import { join } from 'node:path';

/** The node annotation naming the node's storage directory. */
export const STORAGE_DIR_ANNOTATION = 'local.fdckpt.io/storage-dir';

/** The directory of one pod's container logs on its node. */
export function podLogDir(storageDir: string, namespace: string, name: string, uid: string): string {
  return join(storageDir, 'pods', `${namespace}_${name}_${uid}`);
}

/** The log file of one run (restart count) of one container. */
export function containerLogFile(podDir: string, container: string, restartCount: number): string {
  return join(podDir, container, `${restartCount}.log`);
}
