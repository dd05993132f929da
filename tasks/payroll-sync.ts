import type { TaskContext } from 'hubflow';

/**
 * Tasks of the payroll -> warehouse example: small stand-ins for an extract from the payroll
 * database and a load into the warehouse, enough to show batch-window coordination.
 */
export async function extractPayrollChanges(ctx: TaskContext): Promise<{ changed: number; interval: string }> {
  const changed = 40 + (ctx.logicalDate.getUTCDate() % 7) * 3;
  ctx.log.info({ changed }, 'read payroll changes');
  return { changed, interval: `${ctx.dataInterval.start.toISOString()}/${ctx.dataInterval.end.toISOString()}` };
}

export function loadWarehouse({ changed }: { changed: number }): { loaded: number } {
  return { loaded: changed };
}
