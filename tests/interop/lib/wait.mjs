// Polling and cleanup helpers shared by every test file.

import { setTimeout as delay } from 'node:timers/promises'

/** Long enough for a loaded 2-core CI box, far shorter than the suite timeout. */
export const DEFAULT_TIMEOUT_MS = 10_000

const POLL_EVERY_MS = 20

/**
 * Polls `condition` until it returns a truthy value and returns that value.
 *
 * Sync between processes has no completion event we can trust, so tests poll the observable
 * outcome instead of sleeping a fixed time. On timeout the error names what was awaited and,
 * if given, what `describe()` says about the current state, so a failure explains itself.
 */
export async function waitFor (what, condition, { timeout = DEFAULT_TIMEOUT_MS, describe } = {}) {
  const deadline = Date.now() + timeout
  for (;;) {
    const value = await condition()
    if (value) return value
    if (Date.now() >= deadline) {
      const state = describe ? `; current state: ${describe()}` : ''
      throw new Error(`timed out after ${timeout} ms waiting for ${what}${state}`)
    }
    await delay(POLL_EVERY_MS)
  }
}

/**
 * A last-in-first-out stack of cleanup functions bound to one test.
 *
 * Everything a test opens (servers, providers, temp dirs) is pushed here, and the stack unwinds
 * in `t.after`, which runs whether the test passed or threw; this keeps a failing test from
 * leaving timers or child processes that would stop the file's process from exiting. LIFO order
 * closes clients before the server they talk to.
 */
export class Cleanup {
  #fns = []

  constructor (t) {
    t.after(() => this.run())
  }

  defer (fn) {
    this.#fns.push(fn)
  }

  async run () {
    const errors = []
    while (this.#fns.length > 0) {
      const fn = this.#fns.pop()
      try {
        await fn()
      } catch (err) {
        errors.push(err)
      }
    }
    if (errors.length > 0) {
      throw new AggregateError(errors, 'cleanup failed')
    }
  }
}
