/**
 * `fdckpt diff A B [--json]`: compares the fd tables of two images, ignoring
 * what a restore legitimately changes (pids, objrefs, pipe/socket inode
 * numbers): fd numbers, types, flags, offsets, cloexec bits, paths, sharing.
 * Exit status as diff(1): 0 no difference, 1 differences (listed one per line,
 * or `{equal, differences}` with --json), 2 trouble.
 */
import { type Command, type ParsedArgs, UsageError } from '../command.js';
import { diff as spec } from '../specs.js';

export const command: Command = {
  spec,
  async run(parsed: ParsedArgs): Promise<number> {
    // Files after `--` are positionals too (the spec keeps nothing apart).
    const files = parsed.positional;
    if (files.length !== 2) throw new UsageError(`usage: fdckpt ${spec.usage}`);
    const { readImage, diffCheckpoints, diffToJson, renderDiff } = await import('../../agent/image/index.js');
    // Both read at once; each one that fails is named, in argument order (which read
    // fails first is a race).
    const read = await Promise.allSettled(files.map((f) => readImage(f)));
    const failed = read.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed.length > 0) {
      // diff(1)'s convention: 1 means "they differ", trouble is 2.
      for (const r of failed)
        process.stderr.write(`fdckpt diff: ${(r.reason as Error).message.split('\n')[0]}\n`);
      return 2;
    }
    const images = read.map(
      (r) => (r as PromiseFulfilledResult<Awaited<ReturnType<typeof readImage>>>).value,
    );
    const differences = diffCheckpoints(images[0]!, images[1]!);
    const json = parsed.booleans.has('json');
    process.stdout.write(
      json ? `${JSON.stringify(diffToJson(differences), null, 2)}\n` : renderDiff(differences),
    );
    return differences.length === 0 ? 0 : 1;
  },
};
