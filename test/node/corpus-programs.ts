/**
 * The acceptance corpus as pods (corpus-pods.test.ts): the programs of test/corpus, each
 * a container of the corpus image (scripts/image/build-corpus.sh: this machine's Debian
 * packages) or, for Node.js, of fdckpt's own image; each asked one request at its pod's
 * address from the host, which routes to every node's pod network.
 */
import type { V1ConfigMap, V1Container, V1Pod } from '@kubernetes/client-node';
import { execFileSync } from 'node:child_process';
import { tcpAsk } from '../corpus/programs.js';

export const CORPUS_IMAGE = 'localhost/fdckpt-corpus:1';

export interface PodProgram {
  /** Pod name prefix and row label. */
  name: string;
  label: string;
  port: number;
  /** The program's container (its command given, as a restored pod needs). */
  container: Omit<V1Container, 'name'>;
  initContainers?: V1Container[];
  /** A ConfigMap `<name>` mounted at /etc/corpus. */
  files?: Record<string, string>;
  /** An emptyDir at /data. */
  data?: boolean;
  ask(ip: string, port: number): Promise<string>;
  expect: RegExp;
  /** What the program itself logs once it serves: the replacement's logs are its own. */
  logs?: RegExp;
}

const httpGet = (ip: string, port: number): Promise<string> =>
  tcpAsk(port, 'GET / HTTP/1.0\r\nHost: corpus\r\n\r\n', () => false, ip);

const NGINX_CONF = [
  'worker_processes 2;',
  'user nobody nogroup;',
  'pid /tmp/nginx.pid;',
  'error_log stderr notice;',
  'daemon off;',
  'events { worker_connections 64; }',
  'http {',
  '  access_log off;',
  '  client_body_temp_path /tmp; proxy_temp_path /tmp; fastcgi_temp_path /tmp;',
  '  uwsgi_temp_path /tmp; scgi_temp_path /tmp;',
  '  server { listen 80; root /etc/corpus; }',
  '}',
].join('\n');

const POSTGRES_UID = 999; // the image's postgres user (build-corpus.sh)

export const POD_PROGRAMS: PodProgram[] = [
  {
    name: 'redis',
    label: 'redis',
    port: 6379,
    container: {
      image: CORPUS_IMAGE,
      command: [
        'redis-server',
        '--port',
        '6379',
        '--protected-mode',
        'no',
        '--save',
        '',
        '--appendonly',
        'no',
      ],
    },
    ask: (ip, port) => tcpAsk(port, 'PING\r\n', (t) => t.includes('\r\n'), ip),
    expect: /^\+PONG\r\n$/,
    logs: /Ready to accept connections/,
  },
  {
    name: 'memcached',
    label: 'memcached',
    port: 11211,
    container: { image: CORPUS_IMAGE, command: ['memcached', '-p', '11211', '-U', '0', '-u', 'nobody'] },
    ask: (ip, port) => tcpAsk(port, 'stats\r\n', (t) => t.includes('END\r\n'), ip),
    expect: /STAT pid \d+[\s\S]*END\r\n$/,
  },
  {
    name: 'nginx',
    label: 'nginx (master + 2 workers)',
    port: 80,
    container: { image: CORPUS_IMAGE, command: ['nginx', '-e', 'stderr', '-c', '/etc/corpus/nginx.conf'] },
    files: { 'nginx.conf': NGINX_CONF, 'index.html': 'nginx-corpus\n' },
    ask: httpGet,
    expect: /^HTTP\/1\.1 200 OK[\s\S]*\r\n\r\nnginx-corpus\n$/,
    logs: /start worker process/,
  },
  {
    name: 'postgres',
    label: 'postgres',
    port: 5432,
    data: true,
    // initdb into the pod's emptyDir, reachable from the host (trust: a test database).
    initContainers: [
      {
        name: 'initdb',
        image: CORPUS_IMAGE,
        securityContext: { runAsUser: POSTGRES_UID, runAsGroup: POSTGRES_UID },
        volumeMounts: [{ name: 'data', mountPath: '/data' }],
        command: [
          'sh',
          '-c',
          'initdb -D /data/pgdata --auth=trust -U postgres --no-sync --no-locale >/dev/null && ' +
            'echo "host all all 0.0.0.0/0 trust" >>/data/pgdata/pg_hba.conf',
        ],
      },
    ],
    container: {
      image: CORPUS_IMAGE,
      securityContext: { runAsUser: POSTGRES_UID, runAsGroup: POSTGRES_UID },
      command: [
        'postgres',
        '-D',
        '/data/pgdata',
        '-c',
        'listen_addresses=*',
        '-c',
        'fsync=off',
        '-k',
        '/tmp',
      ],
    },
    ask: (ip, port) =>
      Promise.resolve(
        execFileSync('psql', ['-h', ip, '-p', String(port), '-U', 'postgres', '-tAc', 'SELECT 1'], {
          encoding: 'utf8',
          timeout: 10_000,
          stdio: 'pipe',
        }),
      ),
    expect: /^1\n$/,
    logs: /database system is ready to accept connections/,
  },
  {
    name: 'node',
    label: 'Node.js http server',
    port: 8080,
    container: {
      image: 'localhost/fdckpt:dev',
      imagePullPolicy: 'Never',
      command: ['node', '-e', "require('http').createServer((q, s) => s.end('node-corpus')).listen(8080)"],
    },
    ask: httpGet,
    expect: /^HTTP\/1\.1 200 OK[\s\S]*\r\n\r\nnode-corpus$/,
  },
  {
    name: 'python',
    label: 'python3 -m http.server',
    port: 8000,
    container: {
      image: CORPUS_IMAGE,
      command: ['python3', '-m', 'http.server', '8000', '--directory', '/etc/corpus'],
    },
    files: { 'index.html': 'python-corpus\n' },
    ask: httpGet,
    expect: /^HTTP\/1\.0 200 OK[\s\S]*\r\n\r\npython-corpus\n$/,
    logs: /"GET \/ HTTP\/1\.0" 200/,
  },
];

/** The ConfigMap program `p`'s pod mounts, if it has files. */
export function configMapOf(p: PodProgram, name: string): V1ConfigMap | undefined {
  return p.files ? { metadata: { name, namespace: 'default' }, data: p.files } : undefined;
}

/** Program `p` as pod `name` on `node`. */
export function podOf(p: PodProgram, name: string, node: string): V1Pod {
  const mounts = [
    ...(p.files ? [{ name: 'files', mountPath: '/etc/corpus' }] : []),
    ...(p.data ? [{ name: 'data', mountPath: '/data' }] : []),
  ];
  return {
    metadata: { name, namespace: 'default', labels: { corpus: p.name } },
    spec: {
      nodeName: node,
      terminationGracePeriodSeconds: 1,
      ...(p.initContainers ? { initContainers: p.initContainers } : {}),
      containers: [{ name: p.name, ...p.container, volumeMounts: mounts }],
      volumes: [
        ...(p.files ? [{ name: 'files', configMap: { name } }] : []),
        ...(p.data ? [{ name: 'data', emptyDir: {} }] : []),
      ],
    },
  };
}
