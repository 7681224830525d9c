/**
 * The acceptance corpus: real servers from Debian (and python3, node), each started on a
 * loopback port with a temporary data directory, asked one request to prove it serves.
 * scripts/ensure-corpus.sh (npm's pretest) installs them.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';

export interface Program {
  name: string;
  /** Executables that must exist (the test fails naming the missing one). */
  needs: string[];
  /** Prepares `dir` (config, data directory) for a server on `port`. */
  setup?(dir: string, port: number): void;
  /** The command line, started in its own process group. */
  command(dir: string, port: number): string[];
  /** The pids to capture once it serves: by default the started pid; nginx adds its workers. */
  pids?(started: number): number[];
  /** Whether the saved argv is a rewritten title (restore then refuses it and needs the command). */
  rewritesTitle: boolean;
  /** Why the restore is given the command although the saved one is trusted, if it is. */
  givenCommand?: string;
  /** One request; resolves to the answer when the server serves, throws otherwise. */
  ask(port: number, dir: string): Promise<string>;
  /** What `ask` answers when it works. */
  expect: RegExp;
}

const PYTHON = '/usr/bin/python3'; // not a pyenv shim: a wrapper that execs again loses fds
const PG_BIN = (): string => {
  const versions = existsSync('/usr/lib/postgresql') ? readdirSync('/usr/lib/postgresql').sort() : [];
  return `/usr/lib/postgresql/${versions.at(-1) ?? 'NONE'}/bin`;
};

/** Sends `request` over TCP to `host`:`port` and resolves with what came back once `done` says so. */
export function tcpAsk(
  port: number,
  request: string,
  done: (text: string) => boolean,
  host = '127.0.0.1',
): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = net.connect(port, host);
    let text = '';
    const timer = setTimeout(() => {
      c.destroy();
      reject(new Error(`no full answer from ${host}:${port}: ${JSON.stringify(text.slice(0, 200))}`));
    }, 5000);
    c.on('connect', () => c.write(request));
    c.on('data', (b) => {
      text += String(b);
      if (done(text)) {
        clearTimeout(timer);
        c.destroy();
        resolve(text);
      }
    });
    c.on('end', () => {
      clearTimeout(timer);
      resolve(text);
    });
    c.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

const httpGet = (port: number): Promise<string> =>
  tcpAsk(port, 'GET / HTTP/1.0\r\nHost: localhost\r\n\r\n', () => false);

export const PROGRAMS: Program[] = [
  {
    name: 'redis',
    needs: ['/usr/bin/redis-server'],
    command: (dir, port) => [
      'redis-server',
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      'no',
      '--daemonize',
      'no',
    ],
    rewritesTitle: true,
    ask: (port) => tcpAsk(port, 'PING\r\n', (t) => t.includes('\r\n')),
    expect: /^\+PONG\r\n$/,
  },
  {
    name: 'memcached',
    needs: ['/usr/bin/memcached'],
    command: (_dir, port) => ['memcached', '-l', '127.0.0.1', '-p', String(port), '-U', '0', '-u', 'nobody'],
    rewritesTitle: false,
    ask: (port) => tcpAsk(port, 'stats\r\n', (t) => t.includes('END\r\n')),
    expect: /STAT pid \d+[\s\S]*END\r\n$/,
  },
  {
    name: 'nginx (master + 2 workers)',
    needs: ['/usr/sbin/nginx'],
    setup: (dir: string, port: number): void => {
      chmodSync(dir, 0o755); // the workers run as nobody and read www/ from here
      mkdirSync(join(dir, 'www'));
      writeFileSync(join(dir, 'www', 'index.html'), 'nginx-corpus\n');
      const tmp = join(dir, 'tmp');
      writeFileSync(
        join(dir, 'nginx.conf'),
        [
          'worker_processes 2;',
          `pid ${dir}/nginx.pid;`,
          `error_log ${dir}/error.log;`,
          'daemon off;',
          'events { worker_connections 64; }',
          'http {',
          `  access_log ${dir}/access.log;`,
          `  client_body_temp_path ${tmp}; proxy_temp_path ${tmp}; fastcgi_temp_path ${tmp};`,
          `  uwsgi_temp_path ${tmp}; scgi_temp_path ${tmp};`,
          `  server { listen 127.0.0.1:${port}; root ${dir}/www; }`,
          '}',
        ].join('\n'),
      );
    },
    command: (dir) => ['/usr/sbin/nginx', '-p', dir, '-e', `${dir}/error.log`, '-c', `${dir}/nginx.conf`],
    pids: (master) => [master, ...childrenOf(master)],
    rewritesTitle: true,
    ask: httpGet,
    expect: /^HTTP\/1\.1 200 OK[\s\S]*\r\n\r\nnginx-corpus\n$/,
  },
  {
    name: 'postgres',
    needs: [`${PG_BIN()}/postgres`, `${PG_BIN()}/initdb`, '/usr/bin/psql', '/usr/bin/setpriv'],
    setup: (dir: string): void => {
      // postgres refuses to run as root: its data directory belongs to the postgres user.
      const data = join(dir, 'pgdata');
      mkdirSync(data, { mode: 0o700 });
      const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
      const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
      chownSync(dir, uid, gid);
      chownSync(data, uid, gid);
      execFileSync(
        'setpriv',
        [...asPostgres(), `${PG_BIN()}/initdb`, '-D', data, '--auth=trust', '-U', 'postgres', '--no-sync'],
        { stdio: 'ignore' },
      );
    },
    // setpriv execs postgres in place (no fork): the restored table reaches postgres.
    command: (dir, port) => [
      'setpriv',
      ...asPostgres(),
      `${PG_BIN()}/postgres`,
      '-D',
      join(dir, 'pgdata'),
      '-p',
      String(port),
      '-k',
      dir,
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'fsync=off',
    ],
    rewritesTitle: false,
    givenCommand:
      'the saved argv is postgres itself; started as root it refuses to run (setpriv is not in it)',
    ask: (port) =>
      Promise.resolve(
        execFileSync('psql', ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-tAc', 'SELECT 1'], {
          encoding: 'utf8',
          timeout: 10_000,
        }),
      ),
    expect: /^1\n$/,
  },
  {
    name: 'node http server',
    needs: [process.execPath],
    command: (_dir, port) => [
      process.execPath,
      '-e',
      `require('http').createServer((q, s) => s.end('node-corpus')).listen(${port}, '127.0.0.1')`,
    ],
    rewritesTitle: false,
    ask: httpGet,
    expect: /^HTTP\/1\.1 200 OK[\s\S]*\r\n\r\nnode-corpus$/,
  },
  {
    name: 'python3 -m http.server',
    needs: [PYTHON],
    setup: (dir) => writeFileSync(join(dir, 'index.html'), 'python-corpus\n'),
    command: (dir, port) => [
      PYTHON,
      '-m',
      'http.server',
      String(port),
      '--bind',
      '127.0.0.1',
      '--directory',
      dir,
    ],
    rewritesTitle: false,
    ask: httpGet,
    expect: /^HTTP\/1\.0 200 OK[\s\S]*\r\n\r\npython-corpus\n$/,
  },
];

function asPostgres(): string[] {
  return ['--reuid=postgres', '--regid=postgres', '--init-groups', '--'];
}

/** The pids whose parent is `pid` (nginx's workers). */
export function childrenOf(pid: number): number[] {
  const tasks = readdirSync(`/proc/${pid}/task`);
  return tasks
    .flatMap((t) => {
      try {
        return execFileSync('cat', [`/proc/${pid}/task/${t}/children`], { encoding: 'utf8' })
          .trim()
          .split(/\s+/);
      } catch {
        return [];
      }
    })
    .filter((s) => s !== '')
    .map(Number);
}
