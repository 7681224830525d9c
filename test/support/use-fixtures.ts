/**
 * Fixture processes for jest test files (kept apart from fixture.ts, which the
 * benchmarks load outside jest).
 */
import { afterEach } from '@jest/globals';
import { startFixture, type Fixture } from './fixture.js';
/** Starts fixtures for one test file; see useFixtures. */
export interface FixtureStarter {
  (...scenarios: string[]): Promise<Fixture>;
  /** The same, with extra environment (FDPROC_MANY=N). */
  withEnv(env: Record<string, string>, ...scenarios: string[]): Promise<Fixture>;
}

/**
 * A fixture starter for a test file: every fixture it starts is stopped after each
 * test (an afterEach of the calling file). Stopping twice is harmless.
 */
export function useFixtures(defaultEnv: Record<string, string> = {}): FixtureStarter {
  const running: Fixture[] = [];
  afterEach(async () => {
    await Promise.all(running.splice(0).map((f) => f.stop()));
  });
  const withEnv = async (env: Record<string, string>, ...scenarios: string[]): Promise<Fixture> => {
    const fx = await startFixture(scenarios, { ...defaultEnv, ...env });
    running.push(fx);
    return fx;
  };
  return Object.assign((...scenarios: string[]) => withEnv({}, ...scenarios), { withEnv });
}
