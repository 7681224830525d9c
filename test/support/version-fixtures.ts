/**
 * The image fixtures of test/fixtures/images (one per released format version, each
 * written by its release), as their README describes them: for the tests that read them.
 */
import { fileURLToPath } from 'node:url';

export const FIXTURE_DIR = fileURLToPath(new URL('../fixtures/images/', import.meta.url));

export interface Fixture {
  file: string;
  version: number;
  /** The captured tasks (README's second table); the -bound fixtures hold the child alone. */
  main?: number;
  thread?: number;
  child: number;
  /** The TCP listener's port (fd 18 of the main process). */
  port?: number;
  binding?: { namespace: string; name: string; uid: string; podUid: string };
}

/** Every fixture in test/fixtures/images, as its README describes it. */
export const FIXTURES: readonly Fixture[] = [
  { file: 'v1.fdckpt', version: 1, main: 30940, thread: 30943, child: 30942, port: 44217 },
  { file: 'v2.fdckpt', version: 2, main: 31092, thread: 31095, child: 31094, port: 44047 },
  { file: 'v3.fdckpt', version: 3, main: 31244, thread: 31247, child: 31246, port: 37433 },
  { file: 'v4.fdckpt', version: 4, main: 6013, thread: 6017, child: 6016, port: 40331 },
  {
    file: 'v2-bound.fdckpt',
    version: 2,
    child: 31456,
    binding: {
      namespace: 'default',
      name: 'c2',
      uid: '0b5c0a4e-2f7d-4a4e-9d43-7a1f5d2e6c01',
      podUid: '6f1d2c3b-9a8e-4b7c-8d6e-5f4a3b2c1d0e',
    },
  },
  {
    file: 'v3-bound.fdckpt',
    version: 3,
    child: 31608,
    binding: {
      namespace: 'default',
      name: 'c3',
      uid: '5e0c9b1a-3d4f-4c2b-8a7e-1f2e3d4c5b6a',
      podUid: '9c8b7a6f-5e4d-4c3b-a2f1-0e9d8c7b6a5f',
    },
  },
];
