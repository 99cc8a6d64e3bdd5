// Seeded choices for the honest-traffic generator. One integer seed determines every choice the
// generator makes (which client acts, what it does, where, with which text); only the network's
// timing is not under its control.

import { prng } from '../lib/markers.mjs'

/** Mixes a seed with a label into a new 32-bit seed, so each room and client has its own stream. */
export function subSeed (seed, ...labels) {
  let h = (seed >>> 0) ^ 0x9e3779b9
  for (const label of labels) {
    const s = String(label)
    for (let i = 0; i < s.length; i++) {
      h = Math.imul(h ^ s.charCodeAt(i), 0x85ebca6b) >>> 0
      h ^= h >>> 13
    }
    h = Math.imul(h ^ 0x2f, 0xc2b2ae35) >>> 0
    h ^= h >>> 16
  }
  return h >>> 0
}

export class Rng {
  constructor (seed) {
    this.seed = seed >>> 0
    this.next = prng(this.seed)
  }

  /** An integer in [0, n). */
  int (n) {
    return Math.floor(this.next() * n)
  }

  /** An integer in [lo, hi]. */
  between (lo, hi) {
    return lo + this.int(hi - lo + 1)
  }

  chance (p) {
    return this.next() < p
  }

  pick (items) {
    return items[this.int(items.length)]
  }

  /** A 32-bit unsigned integer that is never 0. */
  uint32 () {
    return (Math.floor(this.next() * 0xffffffff) >>> 0) || 1
  }

  /** `entries` is `[[weight, value], ...]`; entries with weight 0 are never chosen. */
  weighted (entries) {
    const total = entries.reduce((sum, [w]) => sum + w, 0)
    let x = this.next() * total
    for (const [w, value] of entries) {
      if (w <= 0) continue
      if (x < w) return value
      x -= w
    }
    return entries.findLast(([w]) => w > 0)[1]
  }
}
