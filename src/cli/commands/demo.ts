/**
 * `fdckpt demo [--engine-only]`: fdckpt end to end on this host, no cluster needed —
 * first the engine alone, then the operator on the local control plane with kubectl.
 */
import { type Command, type ParsedArgs, UsageError } from '../command.js';
import { demo as spec } from '../specs.js';

async function run(parsed: ParsedArgs): Promise<number> {
  if (parsed.positional.length > 0) throw new UsageError(`usage: fdckpt ${spec.usage}`);
  const say = (line = ''): void => void process.stdout.write(`${line}\n`);
  say('== 1. the engine: capture a program, restore its table into a new one');
  const { engineDemo } = await import('../demo/engine.js');
  const engine = await engineDemo(say);
  if (engine !== 0 || parsed.booleans.has('engine-only')) return engine;
  say();
  say('== 2. the operator: Checkpoint and Restore a pod through the API, with kubectl');
  const { operatorDemo } = await import('../demo/operator.js');
  return operatorDemo(say);
}

export const command: Command = { spec, run };
