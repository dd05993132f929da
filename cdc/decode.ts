import type { Pgoutput } from 'pg-logical-replication';
import { PermanentError } from '../core/errors.ts';
import { columnOf, type Entity } from '../hub/entities.ts';
import type { CdcSource } from './source.ts';
import type { CdcChange, Row } from './sink.ts';

/**
 * pgoutput row messages to changes named by entity, tenant and key. Values stay in PostgreSQL's
 * text form: the parser would otherwise run pg's process-wide type parsers (a timestamptz
 * becomes a Date and loses its microseconds, a date shifts with the local zone).
 */

const asText = (raw: unknown) => raw;

interface Mapped {
  entity: Entity;
  /** [field, hub column] of every entity field. */
  fields: [string, string][];
}

export class ChangeDecoder {
  readonly #byRelation = new Map<number, Mapped>();

  constructor(private readonly source: CdcSource) {}

  /** A Relation message: the hub's table as it is now, checked against its entity before any change of it is read. */
  relation(msg: Pgoutput.MessageRelation): void {
    for (const column of msg.columns) column.parser = asText;
    const entity = Object.values(this.source.entities).find((e) => e.table === msg.name && msg.schema === this.source.schema);
    if (!entity) throw new PermanentError(`the publication carries ${msg.schema}.${msg.name}, which is no entity of hub schema '${this.source.schema}'`);
    const names = new Set(msg.columns.map((c) => c.name));
    const fields = Object.keys(entity.columns).map((f): [string, string] => [f, columnOf(entity, f)]);
    const missing = [...fields.map(([, c]) => c), entity.updatedAtColumn, ...(entity.tenantColumn ? [entity.tenantColumn] : [])].filter((c) => !names.has(c));
    if (missing.length) {
      throw new PermanentError(
        `hub table ${msg.schema}.${msg.name} (entity '${entity.name}') has no column ${missing.join(', ')} any more: its definition changed under the stream`,
      );
    }
    this.#byRelation.set(msg.relationOid, { entity, fields });
  }

  change(msg: Pgoutput.MessageInsert | Pgoutput.MessageUpdate | Pgoutput.MessageDelete, seq: number): CdcChange {
    const mapped = this.#byRelation.get(msg.relation.relationOid);
    if (!mapped) throw new PermanentError(`a change of ${msg.relation.schema}.${msg.relation.name} arrived before its relation`);
    const where = `${mapped.entity.name} (${msg.tag})`;
    // An update's old row is not kept: nothing downstream reads it, and a backlog holds many.
    const before = msg.tag === 'delete' && msg.old ? this.#row(mapped, msg.old, where) : null;
    const after = msg.tag === 'delete' ? null : this.#row(mapped, msg.new, where);
    const image = (after ?? before) as Row | null;
    // DELETE without a full old row means the table lost REPLICA IDENTITY FULL.
    if (!image)
      throw new PermanentError(
        `${where}: no row image (replica identity of ${msg.relation.schema}.${msg.relation.name} is ${msg.relation.replicaIdentity}, not full)`,
      );
    const e = mapped.entity;
    const raw = (msg.tag === 'delete' ? msg.old : msg.new) as Record<string, unknown>;
    return {
      entity: e.name,
      op: msg.tag,
      tenant: e.tenantColumn ? (raw[e.tenantColumn] as string | null) : null,
      key: Object.fromEntries(e.key.map((f) => [f, image[f] ?? null])),
      before,
      after,
      updatedAt: (raw[e.updatedAtColumn] as string | null | undefined) ?? null,
      seq,
    };
  }

  #row(mapped: Mapped, tuple: Record<string, unknown>, where: string): Row {
    const row: Row = {};
    for (const [field, column] of mapped.fields) {
      const value = tuple[column];
      // An unchanged TOASTed value with no old row to take it from: never guess it as NULL.
      if (value === undefined)
        throw new PermanentError(`${where}: field '${field}' arrived as an unchanged large value without a before-image; set REPLICA IDENTITY FULL`);
      row[field] = value as string | null;
    }
    return row;
  }
}

/** pgoutput's commit time (µs since the Unix epoch) as ISO-8601 UTC with microseconds. */
export function commitTimestamp(micros: bigint): string {
  const seconds = micros / 1_000_000n;
  const fraction = micros % 1_000_000n;
  return `${new Date(Number(seconds) * 1000).toISOString().slice(0, 19)}.${fraction.toString().padStart(6, '0')}Z`;
}
