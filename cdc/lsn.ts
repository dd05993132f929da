/**
 * WAL positions. PostgreSQL writes them as `X/Y` (two hex halves of a 64-bit number) and the
 * pgoutput parser zero-pads them (`0000000X/YYYYYYYY`), so they are compared as numbers, never
 * as strings.
 */
export type Lsn = bigint;

export function parseLsn(text: string): Lsn {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text);
  if (!m) throw new Error(`not a WAL position: '${text}' (expected X/Y in hex)`);
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

export function formatLsn(lsn: Lsn): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

/** A nullable LSN from the parser (null stands for 0/0). */
export const lsnOf = (text: string | null): Lsn => (text === null ? 0n : parseLsn(text));
