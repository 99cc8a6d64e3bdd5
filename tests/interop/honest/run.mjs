#!/usr/bin/env node
// Long runs of the honest-traffic generator, one session per seed, one after another.
//
//   node tests/interop/honest/run.mjs --seeds 1-200 --rooms 20 --nodes 2
//   node tests/interop/honest/run.mjs --seeds 7 --record /tmp/corpus
//
// Options (defaults in parentheses):
//   --seeds LIST      seeds: `5`, `1-200`, `1,4,9-12` (1)
//   --nodes 1|2       one server, or two sharing a private redis-server (1)
//   --rooms N         rooms per session (2)
//   --clients N       clients per room (5)
//   --steps N         actions per room (160)
//   --pause-ms N      longest pause between two actions of a room (30)
//   --paste-kib A-B   size of a large paste in KiB (10-40)
//   --gc-off SHARE    share of clients with gc: false (0.3)
//   --no-restart      do not restart a node mid-session
//   --restores N      about N version actions per room (make or restore a version through the
//                     HTTP API of either node) while the clients edit, then one restore with no
//                     edit in flight that must leave exactly the version's content (0: off)
//   --record DIR      write each connection's frames and a manifest per room under DIR
//   --keep-going      run every seed even after a failure (default: stop at the first)
//   --json FILE       write every result as JSON to FILE
//   --converge-timeout-ms N  how long clients, late joiners and exports may take to agree (60000)
//   --verbose         print what each session did (actions, close codes)
//
// The binary is $CHORUS_BIN (default target/debug/chorus); exit code 1 if any seed failed.

import { writeFileSync } from 'node:fs'
import { runSession } from './session.mjs'

function parseSeeds (text) {
  const seeds = []
  for (const part of text.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim())
    if (m === null) throw new Error(`bad --seeds part ${JSON.stringify(part)}`)
    const lo = Number(m[1])
    const hi = m[2] === undefined ? lo : Number(m[2])
    for (let s = lo; s <= hi; s++) seeds.push(s)
  }
  return seeds
}

function parseRange (text) {
  const m = /^(\d+)(?:-(\d+))?$/.exec(text)
  if (m === null) throw new Error(`bad range ${JSON.stringify(text)}`)
  return [Number(m[1]), Number(m[2] ?? m[1])]
}

function parseArgs (argv) {
  const args = { seeds: [1], opts: {}, keepGoing: false, json: null }
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${flag} needs a value`)
      return argv[++i]
    }
    switch (flag) {
      case '--seeds': args.seeds = parseSeeds(value()); break
      case '--nodes': args.opts.nodes = Number(value()); break
      case '--rooms': args.opts.rooms = Number(value()); break
      case '--clients': args.opts.clients = Number(value()); break
      case '--steps': args.opts.steps = Number(value()); break
      case '--pause-ms': args.opts.maxPauseMs = Number(value()); break
      case '--paste-kib': args.opts.pasteKiB = parseRange(value()); break
      case '--gc-off': args.opts.gcOffShare = Number(value()); break
      case '--no-restart': args.opts.restart = false; break
      case '--restores': args.opts.restores = Number(value()); break
      case '--record': args.opts.record = value(); break
      case '--keep-going': args.keepGoing = true; break
      case '--json': args.json = value(); break
      case '--verbose': args.opts.verbose = true; break
      case '--converge-timeout-ms': args.opts.convergeTimeoutMs = Number(value()); break
      case '-h': case '--help':
        process.stdout.write('usage: node tests/interop/honest/run.mjs [--seeds 1-200] [--nodes 1|2] [--rooms N] [--clients N] ' +
          '[--steps N] [--pause-ms N] [--paste-kib A-B] [--gc-off SHARE] [--no-restart] [--restores N] [--record DIR] [--keep-going] [--json FILE]\n')
        process.exit(0)
        break
      default: throw new Error(`unknown option ${flag} (try --help)`)
    }
  }
  if (![1, 2].includes(args.opts.nodes ?? 1)) throw new Error('--nodes must be 1 or 2')
  if (!(Number.isInteger(args.opts.restores ?? 0) && (args.opts.restores ?? 0) >= 0)) throw new Error('--restores must be a whole number')
  return args
}

const args = parseArgs(process.argv.slice(2))
process.stderr.write(`honest-traffic: seeds ${args.seeds.length === 1 ? args.seeds[0] : `${args.seeds[0]}..${args.seeds.at(-1)} (${args.seeds.length})`}\n`)
const results = []
for (const seed of args.seeds) {
  const result = await runSession(seed, args.opts)
  results.push(result)
  if (!result.ok && !args.keepGoing) break
}

const failed = results.filter(r => !r.ok)
const byReason = new Map()
for (const r of results) {
  for (const e of r.refusals) {
    const key = `${e.code} ${JSON.stringify(e.reason)}`
    const entry = byReason.get(key) ?? { count: 0, seeds: new Set(), why: new Map() }
    entry.count++
    entry.seeds.add(r.seed)
    const label = e.why + (e.recent?.length ? ` after ${e.recent.at(-1)}` : '')
    entry.why.set(label, (entry.why.get(label) ?? 0) + 1)
    byReason.set(key, entry)
  }
}
process.stderr.write(`\nhonest-traffic summary: ${results.length} seed(s) run, ${failed.length} failed` +
  (failed.length ? `: seeds ${failed.map(r => r.seed).join(', ')}` : '') + '\n')
for (const [key, entry] of byReason) {
  process.stderr.write(`  close ${key}: ${entry.count}x, seeds ${[...entry.seeds].join(', ')}; ` +
    `connection/last action: ${[...entry.why].map(([w, n]) => `${w} (${n})`).join(', ')}\n`)
}
if (args.json !== null) writeFileSync(args.json, JSON.stringify(results, null, 1) + '\n')
process.exit(failed.length === 0 ? 0 : 1)
