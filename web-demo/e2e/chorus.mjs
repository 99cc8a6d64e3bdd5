// Starts and stops the real `chorus` binary for the browser tests.

import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

/** The binary under test: CHORUS_BIN, else the workspace's debug build. */
export const CHORUS_BIN = process.env.CHORUS_BIN ?? fileURLToPath(new URL('../../target/debug/chorus', import.meta.url))

const START_TIMEOUT_MS = 30_000
const STOP_TIMEOUT_MS = 30_000
/** Log lines kept for error messages: enough to show a startup failure, not a whole session. */
const TAIL_LINES = 40

/**
 * @typedef {{ code: number | null, signal: NodeJS.Signals | null }} Exit
 * @typedef {{
 *   url: string,                 // http://IP:PORT, where the server serves the demo and /ws
 *   stop: () => Promise<Exit>,   // SIGTERM, then the exit status
 *   kill: () => Promise<Exit>,   // SIGKILL (a crash, or last-resort cleanup), then the exit status
 *   output: () => string         // recent log lines, for assertion messages
 * }} RunningChorus
 */

/**
 * Runs `chorus serve` on an OS-chosen loopback port and resolves once it logs "listening".
 * Without `staticDir`, `/` is the server's built-in home page.
 * @param {{ dataDir: string, staticDir?: string }} options
 * @returns {Promise<RunningChorus>}
 */
export async function startChorus ({ dataDir, staticDir }) {
  const child = spawn(CHORUS_BIN, [
    'serve', '--listen', '127.0.0.1:0', '--data-dir', dataDir, '--log-format', 'json',
    ...(staticDir === undefined ? [] : ['--static-dir', staticDir])
  ], { stdio: ['ignore', 'pipe', 'pipe'] })

  /** @type {string[]} */
  const tail = []
  const remember = (/** @type {string} */ line) => {
    tail.push(line)
    if (tail.length > TAIL_LINES) tail.shift()
  }
  const output = () => tail.join('\n')
  // Both pipes are always drained: a server blocked on a full stdout pipe would look like a hang.
  const stdout = createInterface({ input: child.stdout })
  createInterface({ input: child.stderr }).on('line', remember)

  /** @type {Promise<Exit>} */
  const exited = new Promise(resolve => child.once('exit', (code, signal) => resolve({ code, signal })))

  const addr = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`chorus logged no "listening" line within ${START_TIMEOUT_MS} ms. Output:\n${output()}`))
    }, START_TIMEOUT_MS)
    const fail = (/** @type {Error} */ error) => { clearTimeout(timer); reject(error) }
    child.once('error', error => fail(new Error(
      `cannot run ${CHORUS_BIN} (${error.message}); build it with \`cargo build -p chorus-cli\` or set CHORUS_BIN`)))
    exited.then(({ code, signal }) => fail(new Error(
      `chorus exited before listening (code ${code}, signal ${signal}). Output:\n${output()}`)))
    stdout.on('line', line => {
      remember(line)
      const addr = listeningAddr(line)
      if (addr !== null) { clearTimeout(timer); resolve(addr) }
    })
  })

  return {
    url: `http://${addr}`,
    output,
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      return exited
    },
    async stop () {
      child.kill('SIGTERM')
      let timer
      const timeout = new Promise((_resolve, reject) => {
        timer = setTimeout(() => reject(new Error(
          `chorus did not exit within ${STOP_TIMEOUT_MS} ms of SIGTERM. Output:\n${output()}`)), STOP_TIMEOUT_MS)
      })
      try {
        return await Promise.race([exited, timeout])
      } finally {
        clearTimeout(timer)
      }
    }
  }
}

/**
 * The bound address from a JSON log line `{"fields":{"message":"listening","addr":"IP:PORT"}}`,
 * or null for any other line (including non-JSON ones).
 * @param {string} line
 * @returns {string | null}
 */
export function listeningAddr (line) {
  let entry
  try {
    entry = JSON.parse(line)
  } catch {
    return null
  }
  const fields = entry?.fields
  return fields?.message === 'listening' && typeof fields.addr === 'string' ? fields.addr : null
}
