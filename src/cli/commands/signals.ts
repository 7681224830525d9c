/** Resolves on the first SIGINT or SIGTERM. */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((done) => {
    const finish = (signal: NodeJS.Signals): void => {
      process.off('SIGINT', finish);
      process.off('SIGTERM', finish);
      done(signal);
    };
    process.on('SIGINT', finish);
    process.on('SIGTERM', finish);
  });
}
