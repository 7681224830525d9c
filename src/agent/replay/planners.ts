/**
 * Dispatch of restore units to their type's planner (FileTypeOps.restore in
 * filetypes/<type>.ts). A pipe unit holds both ends and goes to the pipe
 * type; an fd the policy sends to /dev/null is opened by path whatever it was.
 */
import { fileTypes, opsOf } from '../filetypes/index.js';
import type { FileType } from '../model.js';
import { planByPath } from '../replay-steps/by-path.js';
import { ReplayError } from '../replay-steps/errors.js';
import type { FileUnit, PlanContext, PlanResult, RestoreUnit } from '../replay-steps/types.js';

export type { PlanContext, PlanResult } from '../replay-steps/types.js';

/** A per-file planner, seen without its type parameter. */
interface ByFile {
  restore?: (unit: FileUnit, ctx: PlanContext) => PlanResult;
}

/** Whether replay can recreate files of this type. */
export function canRestore(type: FileType): boolean {
  return opsOf(type).restore !== undefined;
}

/** Plans one unit; 'not-yet' when it depends on a file not placed yet. */
export function planUnit(unit: RestoreUnit, ctx: PlanContext): PlanResult {
  if (unit.kind === 'pipe') return fileTypes.pipe.restore(unit, ctx);
  const u = unit.unit;
  if (u.devnull) return planByPath(u, ctx.builder);
  // The unit's file has this type: its planner accepts it.
  const restore = (opsOf(u.file.type) as unknown as ByFile).restore;
  if (!restore) throw new ReplayError(u.targets[0]!.fd, u.path, `type ${u.file.type} has no restore`);
  return restore(u, ctx);
}
