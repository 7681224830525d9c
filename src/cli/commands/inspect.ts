/**
 * `fdckpt inspect FILE [--json]`: what an image holds — a table per process
 * for people, or the documented JSON shape for tools.
 */
import { readImageFile, renderInspectTable, toInspectJson } from '../../agent/image/index.js';
import { type Command, type ParsedArgs, UsageError } from '../command.js';
import { inspect as spec } from '../specs.js';

async function run(parsed: ParsedArgs): Promise<number> {
  if (parsed.positional.length !== 1) throw new UsageError(`usage: fdckpt ${spec.usage}`);
  const { checkpoint, version } = await readImageFile(parsed.positional[0]!);
  const out = parsed.booleans.has('json')
    ? `${JSON.stringify(toInspectJson(checkpoint, version))}\n`
    : renderInspectTable(checkpoint, version);
  process.stdout.write(out.endsWith('\n') ? out : `${out}\n`);
  return 0;
}

export const command: Command = { spec, run };
