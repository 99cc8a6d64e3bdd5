// A private redis-server per test: spawned on a free loopback port, killable and restartable
// on the same port, so a test can take the relay away and give it back.

import { spawn } from 'node:child_process'
import { connect } from 'node:net'
import { createInterface } from 'node:readline'
import { freePort } from './ports.mjs'
import { waitFor } from './wait.mjs'
import { track, untrack } from './children.mjs'

export const REDIS_BIN = process.env.REDIS_SERVER_BIN ?? 'redis-server'

const INSTALL_HINT = 'Install it with `apt-get install redis-server` (or set REDIS_SERVER_BIN to its path).'

/** Redis starts in milliseconds; this only guards against a wedged machine. */
const START_TIMEOUT_MS = 10_000

/** Attempts with a fresh port when another process grabbed the one we picked. */
const PORT_ATTEMPTS = 3

const LOG_TAIL_LINES = 30


/**
 * Resolves to true if something on `port` answers a RESP `PING` with `+PONG`.
 *
 * Polling the protocol, not the log, because "Ready to accept connections" changed wording
 * between Redis versions.
 */
function ping (port) {
  return new Promise(resolve => {
    const socket = connect({ host: '127.0.0.1', port })
    let reply = ''
    const done = ok => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(1000, () => done(false))
    socket.once('error', () => done(false))
    socket.once('connect', () => socket.write('*1\r\n$4\r\nPING\r\n'))
    socket.on('data', chunk => {
      reply += chunk.toString('latin1')
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'))
    })
  })
}

/**
 * One redis-server child process. `url` stays valid across `kill()` and `restart()`, which is
 * what the chorus nodes were started with.
 */
export class RedisServer {
  constructor (port) {
    this.port = port
    this.url = `redis://127.0.0.1:${port}`
    this.child = null
    this.lines = []
  }

  /** Spawns redis-server on `this.port` and waits until it answers PING. */
  async start () {
    if (this.running) throw new Error(`redis-server on port ${this.port} is already running`)
    const child = spawn(REDIS_BIN, [
      '--port', String(this.port),
      '--bind', '127.0.0.1',
      // No RDB or AOF files: pub/sub needs no persistence, and a restart must come back empty,
      // as a replaced Redis pod would.
      '--save', '',
      '--appendonly', 'no',
      '--daemonize', 'no'
    ], { stdio: ['ignore', 'pipe', 'pipe'], cwd: '/' })
    this.child = child
    track(child)
    const exited = new Promise(resolve => {
      child.once('exit', (code, signal) => {
        untrack(child)
        resolve({ code, signal })
      })
      // A failed spawn emits 'error' and may never emit 'exit'; kill() must not wait for it.
      child.once('error', () => {
        untrack(child)
        resolve({ code: null, signal: null })
      })
    })
    this.exited = exited
    for (const stream of ['stdout', 'stderr']) {
      // Drained for the process's whole life, so a full pipe never blocks Redis.
      createInterface({ input: child[stream] }).on('line', line => {
        this.lines.push(`[${stream}] ${line}`)
        if (this.lines.length > LOG_TAIL_LINES) this.lines.shift()
        if (process.env.TEST_LOG === '1') process.stderr.write(`redis ${stream}: ${line}\n`)
      })
    }
    const spawnError = new Promise((resolve, reject) => child.once('error', err => {
      reject(err.code === 'ENOENT'
        ? new Error(`redis-server not found (${REDIS_BIN}). ${INSTALL_HINT}`)
        : new Error(`could not spawn ${REDIS_BIN}: ${err.message}`))
    }))
    const died = exited.then(({ code, signal }) => {
      throw new Error(`redis-server exited while starting (code ${code}, signal ${signal})\n${this.tail()}`)
    })
    const answered = waitFor(`redis-server on port ${this.port} to answer PING`, () => ping(this.port),
      { timeout: START_TIMEOUT_MS, describe: () => this.tail() })
    try {
      await Promise.race([answered, spawnError, died])
    } catch (err) {
      child.kill('SIGKILL')
      throw err
    } finally {
      // The losers of the race must not surface later as unhandled rejections.
      for (const p of [answered, spawnError, died]) p.catch(() => {})
    }
  }

  get running () {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null
  }

  /** SIGKILL: Redis vanishes as in a crash, dropping every connection at once. */
  async kill () {
    if (this.child === null) return
    if (this.running) this.child.kill('SIGKILL')
    await this.exited
  }

  /** Starts a new redis-server on the same port (it comes back empty). */
  restart () {
    return this.start()
  }

  tail () {
    return this.lines.length === 0 ? '(redis printed nothing)' : `last redis output:\n${this.lines.join('\n')}`
  }
}

/**
 * Starts a private redis-server on a free port and registers its kill with `cleanup`.
 *
 * Fails (never skips) when redis-server is not installed, saying how to install it.
 */
export async function startRedis ({ cleanup } = {}) {
  let lastError
  for (let attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
    const redis = new RedisServer(await freePort())
    try {
      await redis.start()
      if (cleanup) cleanup.defer(() => redis.kill())
      return redis
    } catch (err) {
      lastError = err
      // Only a lost race for the port is worth another try.
      if (!/Address already in use/i.test(redis.tail())) throw err
    }
  }
  throw lastError
}
