/**
 * Seeded randomness for the demo hub. Hand-written rather than Math.random so that a seed gives
 * the same hub on every machine and Node version, byte for byte.
 */

/** Uniform numbers in [0, 1). */
export interface Rng {
  next(): number;
}

/**
 * mulberry32: 32 bits of state, fast, and good enough for test data (not for secrets). A class,
 * not a closure: tsx wraps every closure it creates in a naming helper, which costs more than
 * the generator itself when seeding draws millions of streams.
 */
export class Mulberry32 implements Rng {
  private a: number;
  constructor(seed: number) {
    this.a = seed | 0;
  }
  next(): number {
    const a = (this.a = (this.a + 0x6d2b79f5) | 0);
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  }
}

/**
 * Folds numbers into one 32-bit seed (murmur3's block and finaliser steps). Each worker draws
 * from its own stream `rngFor(seed, purpose, index)`, so a table can be generated on its own,
 * in any order, and still agree with the others.
 */
export function mix(...parts: number[]): number {
  let h = 0x2f6b9a1d;
  for (const p of parts) {
    // Seeds may exceed 32 bits; the high word must count too.
    h = mixWord(mixWord(h, p | 0), Math.floor(p / 4_294_967_296) | 0);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

function mixWord(h: number, word: number): number {
  let k = Math.imul(word, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  h ^= Math.imul(k, 0x1b873593);
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/** FNV-1a, to turn a key such as a worker id into a stream number. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

export function rngFor(...parts: number[]): Rng {
  return new Mulberry32(mix(...parts));
}

/** An integer in [min, max]. */
export function int(rng: Rng, min: number, max: number): number {
  return min + Math.floor(rng.next() * (max - min + 1));
}

export function pick<T>(rng: Rng, items: ArrayLike<T>): T {
  return items[Math.floor(rng.next() * items.length)]!;
}

/** Picks by weight; weights need not sum to 1. */
export function weighted<T>(rng: Rng, entries: readonly (readonly [T, number])[]): T {
  let total = 0;
  for (const [, w] of entries) total += w;
  let r = rng.next() * total;
  for (const [value, w] of entries) {
    r -= w;
    if (r < 0) return value;
  }
  return entries[entries.length - 1]![0];
}

/** n random decimal digits. */
export function digits(rng: Rng, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += Math.floor(rng.next() * 10);
  return s;
}

export function letters(rng: Rng, n: number, alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ'): string {
  let s = '';
  for (let i = 0; i < n; i++) s += alphabet[Math.floor(rng.next() * alphabet.length)];
  return s;
}
