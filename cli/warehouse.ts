import { userInfo } from 'node:os';
import type { Command } from 'commander';
import { printJson, printRows, withRuntime } from './output.ts';

/** `hubflow warehouse grant|revoke|access`: which database roles read which tenants' history. */

const access = () => import('../tasks/history/access.ts');
const entities = async () => (await import('../hub/entities.ts')).HUB_ENTITIES;

export function registerWarehouseCommands(program: Command): void {
  const warehouse = program.command('warehouse').description("tenant access to the warehouse history: a role reads only its tenants' rows");

  warehouse
    .command('grant <tenant>')
    .description("let a database role read one tenant's history ('*': every tenant) and the global reference data; fences every tenant-keyed table first")
    .requiredOption('--role <role>', 'the database role (an analyst role, a BI tool)')
    .option('--by <name>', 'who grants (default: the system user)', userInfo().username)
    .action((tenant: string, opts: { role: string; by: string }) =>
      withRuntime(async (rt) => {
        await (await access()).grantTenant(await rt.connections.warehouse(), await entities(), { role: opts.role, tenant, by: opts.by });
        process.stdout.write(`granted: role ${opts.role} reads tenant '${tenant}'\n`);
      }),
    );

  warehouse
    .command('revoke <tenant>')
    .description("stop a database role reading one tenant's history; a role left with no tenant reads no tenant's rows")
    .requiredOption('--role <role>', 'the database role')
    .action((tenant: string, opts: { role: string }) =>
      withRuntime(async (rt) => {
        const had = await (await access()).revokeTenant(await rt.connections.warehouse(), await entities(), { role: opts.role, tenant });
        process.stdout.write(
          had ? `revoked: role ${opts.role} no longer reads tenant '${tenant}'\n` : `role ${opts.role} was not granted tenant '${tenant}'\n`,
        );
      }),
    );

  warehouse
    .command('access')
    .description('every role and the tenants it reads')
    .option('--json', 'print JSON')
    .action((opts: { json?: boolean }) =>
      withRuntime(async (rt) => {
        const rows = await (await access()).listAccess(await rt.connections.warehouse(), await entities());
        if (opts.json) return printJson(rows);
        if (!rows.length) return void process.stdout.write('no role is granted any tenant\n');
        printRows(
          rows.map((r) => ({ role: r.role, tenant: r.tenant, 'granted by': r.grantedBy, 'granted at': r.grantedAt })),
          false,
        );
      }),
    );
}
