/**
 * `fdckpt diff A B [--json]`: compares the fd tables of two images, ignoring
 * what a restore legitimately changes (pids, objrefs, pipe/socket inode
 * numbers): fd numbers, types, flags, offsets, cloexec bits, paths, sharing.
 * Exit status as diff(1): 0 no difference, 1 differences (listed one per line,
 * or `{equal, differences}` with --json), 2 trouble.
 */
import { type Command, UsageError, parseArgs } from '../command.js';

export const command: Command = {
  name: 'diff',
  usage: 'diff IMAGE_A IMAGE_B [--json]',
  async run(args: string[]): Promise<number> {
    const parsed = parseArgs(args, ['json']);
    if (parsed.flags.size > 0) throw new UsageError(`unknown option --${[...parsed.flags.keys()][0]}`);
    const files = [...parsed.positional, ...parsed.rest];
    if (files.length !== 2) throw new UsageError(`usage: fdckpt ${command.usage}`);
    const { readImage, diffCheckpoints, diffToJson, renderDiff } = await import('../../agent/image/index.js');
    let images;
    try {
      images = await Promise.all(files.map((f) => readImage(f)));
    } catch (err) {
      // diff(1)'s convention: 1 means "they differ", trouble is 2.
      process.stderr.write(`fdckpt diff: ${(err as Error).message.split('\n')[0]}\n`);
      return 2;
    }
    const differences = diffCheckpoints(images[0]!, images[1]!);
    const json = parsed.booleans.has('json');
    process.stdout.write(
      json ? `${JSON.stringify(diffToJson(differences), null, 2)}\n` : renderDiff(differences),
    );
    return differences.length === 0 ? 0 : 1;
  },
};
