// Every child process (chorus, redis-server) a test file spawned and has not yet seen exit. A
// test that throws still runs its cleanup, but an uncaught error or a runner-level timeout may
// not; these handlers make sure no child outlives the test file either way.

const live = new Set()

process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL')
})
for (const [signal, number] of [['SIGINT', 2], ['SIGTERM', 15]]) {
  process.once(signal, () => {
    for (const child of live) child.kill('SIGKILL')
    process.exit(128 + number)
  })
}

/** Kills `child` if it is still running when this process ends. */
export function track (child) {
  live.add(child)
}

/** `child` has exited: nothing to kill any more. */
export function untrack (child) {
  live.delete(child)
}
