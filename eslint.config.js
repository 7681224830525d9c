import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// Import paths are matched as written (relative), so a folder is named by its last
// segment: '**/daemon/**' catches '../daemon/x.js' as well as '../../agent/daemon/x.js'.

/** What the engine may not import, and why. */
const ENGINE_BANS = [
  [
    '**/controller/**',
    '**/kube/**',
    '**/daemon/**',
    '**/migration/**',
    '**/transfer/**',
    '**/local/**',
    '**/cli/**',
    '**/api/**',
    '@kubernetes/client-node',
  ],
  'the engine (capture, collect, filetypes, image, replay, cgroup, linux) knows no Kubernetes',
];

/**
 * The engine's folders, bottom up, each with the engine folders above it that it may
 * not import (docs/adr/0016-layers.md): what a file type needs of /proc and of the
 * replay's program sits below the types, the types below capture and replay.
 */
const ENGINE_ORDER = [
  ['procfs', ['filetypes', 'capture', 'collect', 'replay', 'replay-steps']],
  ['replay-steps', ['filetypes', 'capture', 'collect', 'replay']],
  ['filetypes', ['capture', 'collect', 'replay']],
  ['capture', ['collect', 'replay']],
  ['image', ['capture', 'collect', 'replay']],
  ['collect', ['replay']],
  ['replay', ['capture', 'collect']],
  ['cgroup', ['capture', 'collect', 'replay', 'filetypes']],
];

/**
 * `files` may not import what `banned` matches (gitignore patterns on the import path),
 * nor what each of `more` matches. Also bans koffi outside src/agent/linux, since one
 * no-restricted-imports config replaces another for the same file.
 */
function layer(files, banned, why, more = []) {
  return [
    {
      files,
      rules: {
        'no-restricted-imports': [
          'error',
          {
            paths: files.includes('src/agent/linux/**')
              ? []
              : [{ name: 'koffi', message: 'syscalls only in src/agent/linux' }],
            patterns: [{ group: banned, message: why }, ...more],
          },
        ],
      },
    },
  ];
}

/** One layer per engine folder: the engine's bans and the folders above it. */
function engineLayers() {
  return ENGINE_ORDER.flatMap(([folder, above]) =>
    layer([`src/agent/${folder}/**`], ...ENGINE_BANS, [
      {
        group: above.map((f) => `**/${f}/**`),
        message: `src/agent/${folder} sits below ${above.join(', ')} in the engine (docs/adr/0016-layers.md)`,
      },
    ]),
  );
}

export default tseslint.config(
  { ignores: ['dist/', 'build/', 'node_modules/', 'coverage/', 'native/', '**/*.cjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ['*.js', 'bin/*.js'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/explicit-module-boundary-types': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/restrict-template-expressions': [
        'error',
        { allowNumber: true, allowBoolean: true },
      ],
    },
  },
  {
    files: ['src/**/*.ts'],
    ignores: ['src/agent/linux/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        { paths: [{ name: 'koffi', message: 'syscalls only in src/agent/linux' }] },
      ],
    },
  },
  // Layers (docs/adr/0016-layers.md): shared <- api <- kube, engine <- agent daemon / controller <- local, cli.
  // Each block says what a folder may not import; syscalls (koffi) stay in src/agent/linux.
  // For one file the last matching block wins, so the wide src/agent block comes before the
  // engine's, which bans more.
  ...layer(
    ['src/shared/**'],
    ['**/agent/**', '**/api/**', '**/controller/**', '**/kube/**', '**/local/**', '**/cli/**', '**/tls/**'],
    'src/shared is the bottom layer: it imports nothing of the project',
  ),
  ...layer(
    ['src/api/**'],
    ['**/agent/**', '**/controller/**', '**/kube/**', '**/local/**', '**/cli/**'],
    "src/api (the CRDs' types and validation) imports only src/shared",
  ),
  ...layer(
    ['src/kube/**'],
    ['**/agent/**', '**/controller/**', '**/local/**', '**/cli/**'],
    'src/kube is the Kubernetes runtime under both the controller and the agent: it imports neither',
  ),
  ...layer(
    ['src/agent/**'],
    ['**/controller/**', '**/local/**', '**/cli/**'],
    'the agent (daemon, migration, transfer) talks to the controller through the API, never its code',
  ),
  ...engineLayers(),
  ...layer(['src/agent/model.ts'], ...ENGINE_BANS),
  ...layer(['src/agent/linux/**'], ...ENGINE_BANS),
  ...layer(
    ['src/controller/**'],
    ['**/agent/**', '**/local/**', '**/cli/**'],
    'the controller drives agents through the API, never their code',
  ),
  // The transfer server runs alone in a process in tests (test/support/transfer.ts) and
  // shares the image format's numbers with the reader: it imports node: modules and
  // image/format.ts, and format.ts imports nothing.
  {
    files: ['src/agent/transfer/server.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^(?!node:|\\.\\./image/format\\.js$)',
              message: 'the transfer server imports only node: modules and image/format.ts',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['src/agent/image/format.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector:
            'ImportDeclaration, ImportExpression, ExportAllDeclaration, ExportNamedDeclaration[source]',
          message: 'image/format.ts imports nothing: the transfer server imports it (eslint.config.js)',
        },
      ],
    },
  },
  {
    files: ['**/*.js'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
);
