// Send-to-acknowledgement latency: one @hocuspocus/provider 4.x client types one character
// at a time against the chorus binary (CHORUS_BIN, default target/debug/chorus) and measures
// from the edit to `unsyncedChanges` back at 0 (the durable SyncStatus). Not a test; run as
//   node ack-latency.mjs always 500      (or `1s`; the data dir is under the OS temp dir)
// A single writer measures the latency of one append; the load tester measures it under load.
import { performance } from 'node:perf_hooks'
import { HocusSocket, HocusClient, hocusUrl } from './lib/hocuspocus.mjs'
import { startServer } from './lib/server.mjs'
const [fsync, n = '500'] = process.argv.slice(2)
const server = await startServer({ args: ['--fsync', fsync] })
const socket = new HocusSocket(hocusUrl(server), { version: 'v4' })
const client = new HocusClient(socket, 'ack-latency', {})
await client.synced()
await client.acknowledged()
const samples = []
for (let i = 0; i < Number(n); i++) {
  const start = performance.now()
  client.text().insert(client.text().length, 'x')
  await new Promise(resolve => {
    const check = () => client.provider.unsyncedChanges === 0 ? resolve() : setImmediate(check)
    check()
  })
  samples.push(performance.now() - start)
}
samples.sort((a, b) => a - b)
const q = p => samples[Math.min(samples.length - 1, Math.floor(p * samples.length))].toFixed(2)
console.log(JSON.stringify({ fsync, n: samples.length, p50_ms: q(0.5), p99_ms: q(0.99), max_ms: samples.at(-1).toFixed(2) }))
client.destroy(); socket.destroy(); await server.kill()
