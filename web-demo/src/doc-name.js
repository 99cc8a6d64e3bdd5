// Which document this tab edits, and how that name travels in URLs.
//
// The name lives in the query string (`/?doc=<name>`) rather than the fragment so that a link is
// an ordinary URL: it survives chat apps that drop fragments, and changing documents is a normal
// page load instead of a hashchange the app would have to tear itself down for.

/** Query parameter that carries the document name. */
export const DOC_PARAM = 'doc'

/** The server refuses names longer than this many UTF-8 bytes (chorus-protocol `MAX_DOC_NAME_BYTES`). */
export const MAX_DOC_NAME_BYTES = 512

// Short, unambiguous words: a generated name is meant to be read aloud ("open amber-fox-42").
const ADJECTIVES = ['amber', 'brisk', 'calm', 'dusky', 'eager', 'fuzzy', 'gentle', 'hazel', 'ivory', 'jolly',
  'keen', 'lucky', 'mellow', 'nimble', 'olive', 'plucky', 'quiet', 'rosy', 'sunny', 'tidy', 'witty', 'zesty']
const NOUNS = ['badger', 'comet', 'delta', 'ember', 'falcon', 'garden', 'harbor', 'island', 'jasper', 'kite',
  'lagoon', 'meadow', 'nebula', 'orchid', 'pebble', 'quartz', 'river', 'summit', 'tundra', 'willow']

/**
 * Returns the document name carried by `search` (a `location.search` string), or null when it
 * is missing or one the server would refuse (empty, too long, or with control characters).
 * @param {string} search
 * @returns {string | null}
 */
export function docNameFromSearch (search) {
  const raw = new URLSearchParams(search).get(DOC_PARAM)
  if (raw === null) return null
  const name = raw.trim()
  if (name === '') return null
  if (new TextEncoder().encode(name).length > MAX_DOC_NAME_BYTES) return null
  // Same rule as the server's DocName: Unicode "Cc" is what Rust's char::is_control rejects.
  if (/\p{Cc}/u.test(name)) return null
  return name
}

/**
 * A fresh, readable document name such as `amber-falcon-4821`.
 * @param {() => number} [random] uniform in [0, 1); injectable so tests are deterministic
 * @returns {string}
 */
export function randomDocName (random = Math.random) {
  const pick = (/** @type {string[]} */ list) => list[Math.floor(random() * list.length)]
  const number = Math.floor(random() * 9000) + 1000
  return `${pick(ADJECTIVES)}-${pick(NOUNS)}-${number}`
}

/**
 * The link that opens `name`, relative to the current page so it works under any host and path.
 * @param {string} name
 * @returns {string}
 */
export function docHref (name) {
  return `?${new URLSearchParams({ [DOC_PARAM]: name })}`
}

/**
 * The room segment that y-websocket appends to the server URL. The provider does not encode it
 * itself, so `?` or `#` in a name would otherwise cut the URL short; `/` stays literal because the
 * server allows folder-like names and every client must agree on one spelling of the path.
 * @param {string} name
 * @returns {string}
 */
export function roomPath (name) {
  return name.split('/').map(encodeURIComponent).join('/')
}

/**
 * A WebSocket endpoint on the host that served the page: the demo works behind any host, port
 * and TLS terminator without configuration.
 * @param {{ protocol: string, host: string }} location
 * @param {string} [path] `/ws` for y-websocket clients, `/hocuspocus` for Hocuspocus ones
 * @returns {string}
 */
export function sameOriginServerUrl (location, path = '/ws') {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:'
  return `${scheme}//${location.host}${path}`
}
