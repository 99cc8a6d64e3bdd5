// Spawns the real `chorus` binary and finds its port from the JSON "listening" log line.

import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { get as httpGet } from 'node:http'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { track, untrack } from './children.mjs'

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')

/** The binary under test; CI may point this at a release build. */
export const CHORUS_BIN = process.env.CHORUS_BIN ?? join(REPO_ROOT, 'target', 'debug', 'chorus')

/** Startup includes loading snapshots from the data dir, so allow a slow machine some room. */
const START_TIMEOUT_MS = 15_000

/** The brief asks for an exit "within a few seconds" of SIGTERM, snapshots flushed. */
export const STOP_TIMEOUT_MS = 10_000

/** How many stdout/stderr lines to keep for error messages. */
const LOG_TAIL_LINES = 60


/** Makes a fresh data dir; the caller decides when to remove it (restart tests reuse it). */
export function makeDataDir () {
  return mkdtempSync(join(tmpdir(), 'chorus-interop-'))
}

export function removeDataDir (dir) {
  rmSync(dir, { recursive: true, force: true })
}

/** The server's environment: ours, minus any CHORUS_* setting that could override the test's flags. */
function childEnv () {
  const env = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('CHORUS_')) env[key] = value
  }
  env.RUST_LOG ??= 'info'
  return env
}

/**
 * A running `chorus serve` process.
 *
 * `url` is the y-websocket server URL (`ws://127.0.0.1:PORT/ws`); a provider appends
 * `/<document name>` to it.
 */
export class ChorusServer {
  constructor (child, addr, dataDir, logs, name) {
    this.child = child
    this.name = name
    this.addr = addr
    this.dataDir = dataDir
    this.url = `ws://${addr}/ws`
    this.httpUrl = `http://${addr}`
    this.logs = logs
    this.exited = new Promise(resolve => {
      if (child.exitCode !== null || child.signalCode !== null) {
        resolve({ code: child.exitCode, signal: child.signalCode })
      } else {
        child.once('exit', (code, signal) => resolve({ code, signal }))
      }
    })
  }

  /**
   * Sends SIGTERM and resolves to `{ code, signal }` once the process exits.
   *
   * Rejects (after killing the process) if it is still running `timeout` ms later, so a server
   * that hangs on shutdown fails the test instead of hanging the suite.
   */
  async stop ({ timeout = STOP_TIMEOUT_MS } = {}) {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGTERM')
    }
    let timer
    const timedOut = new Promise(resolve => { timer = setTimeout(() => resolve(null), timeout) })
    const result = await Promise.race([this.exited, timedOut])
    clearTimeout(timer)
    if (result === null) {
      this.child.kill('SIGKILL')
      await this.exited
      throw new Error(`chorus did not exit within ${timeout} ms of SIGTERM\n${this.logs.tail()}`)
    }
    return result
  }

  /** Ends the process without ceremony; cleanup after a test, or a simulated crash. */
  async kill () {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGKILL')
    }
    await this.exited
  }

  /**
   * `GET /readyz` as `{ status, body }` (body parsed as JSON, or null). Rejects if the server
   * does not answer within `timeout` ms.
   */
  readiness ({ timeout = 2000 } = {}) {
    return new Promise((resolve, reject) => {
      // `agent: false`: a kept-alive socket would hold the test process open after the test.
      const req = httpGet(`${this.httpUrl}/readyz`, { agent: false, timeout }, res => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', chunk => { text += chunk })
        res.on('end', () => {
          let body = null
          try { body = JSON.parse(text) } catch {}
          resolve({ status: res.statusCode, body })
        })
        res.on('error', reject)
      })
      req.on('timeout', () => req.destroy(new Error(`GET /readyz on ${this.addr} timed out`)))
      req.on('error', reject)
    })
  }

  describe () {
    return `chorus ${this.name ?? this.addr}`
  }
}

/** Keeps the last lines of the server's output, for failure messages. */
class LogTail {
  lines = []
  nonJsonStdoutLines = []

  constructor (name) {
    this.label = name === undefined ? 'chorus' : `chorus[${name}]`
  }

  push (stream, line) {
    this.lines.push(`[${stream}] ${line}`)
    if (this.lines.length > LOG_TAIL_LINES) this.lines.shift()
    if (process.env.TEST_LOG === '1') process.stderr.write(`${this.label} ${stream}: ${line}\n`)
  }

  tail () {
    return this.lines.length === 0 ? '(server printed nothing)' : `last server output:\n${this.lines.join('\n')}`
  }
}

/** The log line as a JSON object, or null if it is not one. */
function parseRecord (line) {
  try {
    const record = JSON.parse(line)
    return record !== null && typeof record === 'object' && !Array.isArray(record) ? record : null
  } catch {
    return null
  }
}

/** `fields.addr` of the log record whose `fields.message` is "listening", or null. */
function listeningAddr (record) {
  const fields = record?.fields
  if (fields?.message === 'listening' && typeof fields.addr === 'string') return fields.addr
  return null
}

/**
 * Starts `chorus serve` on 127.0.0.1 port 0 with JSON logs and waits for its "listening" line.
 *
 * Pass `dataDir` to reuse a directory (restart tests); otherwise a fresh one is made. Registers
 * the process with `cleanup` (a `Cleanup`) when given, so it is killed after the test.
 *
 * `listen` replaces the port-0 address (a node restarted on its old port, so its clients'
 * providers reconnect by themselves), `args` are appended to the command line (e.g. the relay
 * flags), and `name` labels the node in failure messages and `TEST_LOG` output.
 */
export async function startServer ({ cleanup, dataDir, listen = '127.0.0.1:0', args = [], name } = {}) {
  if (!existsSync(CHORUS_BIN)) {
    throw new Error(
      `chorus binary not found at ${CHORUS_BIN}. Build it first with ` +
      '`cargo build -p chorus-cli` from the repository root, or set CHORUS_BIN to its path.'
    )
  }
  const ownsDataDir = dataDir === undefined
  const dir = dataDir ?? makeDataDir()
  if (cleanup && ownsDataDir) cleanup.defer(() => removeDataDir(dir))

  const child = spawn(
    CHORUS_BIN,
    ['serve', '--listen', listen, '--data-dir', dir, '--log-format', 'json', ...args],
    { env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] }
  )
  track(child)
  child.once('exit', () => untrack(child))

  const logs = new LogTail(name)
  // Both pipes are drained for the whole life of the process: a full pipe would block the
  // server's logging and look like a server hang.
  createInterface({ input: child.stderr }).on('line', line => logs.push('stderr', line))
  const stdout = createInterface({ input: child.stdout })

  const addr = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`chorus printed no "listening" log line within ${START_TIMEOUT_MS} ms\n${logs.tail()}`))
    }, START_TIMEOUT_MS)
    const settle = () => clearTimeout(timer)
    stdout.on('line', line => {
      logs.push('stdout', line)
      const record = parseRecord(line)
      if (record === null) logs.nonJsonStdoutLines.push(line)
      const found = listeningAddr(record)
      if (found !== null) {
        settle()
        resolve(found)
      }
    })
    child.once('error', err => {
      settle()
      reject(new Error(`could not spawn ${CHORUS_BIN}: ${err.message}`))
    })
    child.once('exit', (code, signal) => {
      settle()
      reject(new Error(`chorus exited before listening (code ${code}, signal ${signal})\n${logs.tail()}`))
    })
  }).catch(async err => {
    child.kill('SIGKILL')
    throw err
  })

  const server = new ChorusServer(child, addr, dir, logs, name)
  if (cleanup) cleanup.defer(() => server.kill())
  return server
}
