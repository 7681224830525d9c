import { afterEach, expect, it } from '@jest/globals';
import { capture } from '../../../src/agent/capture/index.js';
import { listTasks, resolveCgroup } from '../../../src/agent/cgroup/cgroup.js';
import { findLeaks } from '../../../src/agent/collect/leaks.js';
import { destroyCgroup, killAll, makeCgroup, startPython, type Started } from '../../support/cgtest.js';

const started: Started[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await destroyCgroup(d);
  await killAll(started);
});

// clone(CLONE_FILES) without CLONE_THREAD: a second process on the same fd table, which then joins the pod.
const SHARED_TABLE = `
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
r, w = os.pipe()
pid = libc.syscall(56, 0x400 | 17, 0, 0, 0, 0)   # SYS_clone, CLONE_FILES | SIGCHLD
if pid == 0:
    with open(POD + "/cgroup.procs", "w") as f:
        f.write(str(os.getpid()))
    while True:
        time.sleep(3600)
while str(pid) not in open(POD + "/cgroup.procs").read().split():
    time.sleep(0.01)
ready({"child": pid})
time.sleep(3600)
`;

it('a file table shared across the boundary is a leak of the whole table', async () => {
  const pod = makeCgroup('v2');
  const out = makeCgroup('v2');
  dirs.push(pod, out);
  const parent = await startPython(SHARED_TABLE.replace(/POD/g, JSON.stringify(pod)), out);
  started.push(parent);
  const { child } = JSON.parse(parent.ready) as { child: number };
  const tasks = listTasks(resolveCgroup(pod));
  expect(tasks.pids).toEqual([child]);
  const report = findLeaks(capture(tasks.pids).checkpoint, tasks.tids);
  const table = report.leaks.filter((l) => l.via === 'shared file table');
  expect(table).toHaveLength(1);
  expect(table[0]).toMatchObject({
    object: { type: 'files', id: `files of pid ${child}` },
    inside: { pid: child, fd: -1 },
    outside: { pid: parent.pid },
  });
  // Every fd of a shared table is also the same open file on both sides.
  expect(report.leaks.filter((l) => l.via === 'same open file').length).toBeGreaterThan(0);
});

// A thread outside that unshare(CLONE_FILES)'d keeps the write end in a table of its own;
// the process's own table (/proc/PID/fd) no longer has it.
const THREAD_TABLE = `
import ctypes, os, threading, time
libc = ctypes.CDLL(None, use_errno=True)
r, w = os.pipe()
child = os.fork()
if child == 0:
    os.close(w)
    null = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)                         # not the runner's stdio, which the parent shares
    os.close(null)
    # Joining the pod last is the child's "ready": its table no longer changes.
    with open(POD + "/cgroup.procs", "w") as f:
        f.write(str(os.getpid()))
    while True:
        time.sleep(3600)
os.close(r)
unshared = threading.Event()
tid = []
def hold():
    tid.append(threading.get_native_id())
    libc.unshare(0x400)                           # CLONE_FILES: the thread copies the table
    unshared.set()
    time.sleep(3600)
threading.Thread(target=hold, daemon=True).start()
unshared.wait()
os.close(w)                                       # gone from the process's table, kept by the thread's
while str(child) not in open(POD + "/cgroup.procs").read().split():
    time.sleep(0.01)
ready({"child": child, "tid": tid[0], "r": r, "w": w})
time.sleep(3600)
`;

it('finds the other end held in an outside thread’s own fd table', async () => {
  const pod = makeCgroup('v2');
  const out = makeCgroup('v2');
  dirs.push(pod, out);
  const parent = await startPython(THREAD_TABLE.replace(/POD/g, JSON.stringify(pod)), out);
  started.push(parent);
  const info = JSON.parse(parent.ready) as { child: number; tid: number; r: number; w: number };
  const tasks = listTasks(resolveCgroup(pod));
  const report = findLeaks(capture(tasks.pids).checkpoint, tasks.tids);
  expect(report.leaks).toEqual([
    expect.objectContaining({
      via: 'other end of pipe',
      inside: expect.objectContaining({ pid: info.child, fd: info.r }) as unknown,
      outside: expect.objectContaining({ pid: info.tid, fd: info.w }) as unknown,
    }),
  ]);
});
