// Who this tab is to the other people in the document: a display name and a colour.
//
// A tab gets a random name and colour, so two tabs of one browser are two distinguishable users.
// A name the user types is kept in localStorage and wins in every later tab; the colour stays
// per tab, because two tabs sharing a colour would make their cursors impossible to tell apart.

/**
 * Cursor colours: few enough that any two are easy to tell apart, each dark enough to carry the
 * white name label y-codemirror draws on it.
 */
export const PALETTE = ['#e11d48', '#ea580c', '#16a34a', '#0891b2', '#2563eb', '#7c3aed', '#c026d3', '#475569']

/** Longest name shown; awareness states are broadcast to everyone, so keep them small. */
export const MAX_NAME_LENGTH = 40

const FALLBACK_COLOR = '#64748b'
const SAVED_NAME_KEY = 'chorus.name'
const TAB_NAME_KEY = 'chorus.tabName'
const TAB_COLOR_KEY = 'chorus.tabColor'

const MOODS = ['Bold', 'Bright', 'Clever', 'Curious', 'Daring', 'Gentle', 'Happy', 'Jolly', 'Lively',
  'Mighty', 'Patient', 'Quick', 'Sunny', 'Swift', 'Witty', 'Zen']
const ANIMALS = ['Badger', 'Beaver', 'Falcon', 'Fox', 'Heron', 'Koala', 'Lynx', 'Marmot', 'Otter',
  'Owl', 'Panda', 'Puffin', 'Raven', 'Seal', 'Tapir', 'Wombat']

/**
 * @typedef {{ name: string, color: string, colorLight: string }} User
 * The awareness `user` field; y-codemirror.next reads exactly these keys for remote carets.
 */

/**
 * @param {() => number} [random]
 * @returns {string}
 */
export function randomName (random = Math.random) {
  const pick = (/** @type {string[]} */ list) => list[Math.floor(random() * list.length)]
  return `${pick(MOODS)} ${pick(ANIMALS)}`
}

/**
 * @param {() => number} [random]
 * @returns {string}
 */
export function randomColor (random = Math.random) {
  return PALETTE[Math.floor(random() * PALETTE.length)]
}

/**
 * Trims a typed or received name to something displayable; empty means "no name".
 * @param {unknown} value
 * @returns {string}
 */
export function cleanName (value) {
  if (typeof value !== 'string') return ''
  // Control characters would let a peer break the layout of everyone's presence list.
  return value.replace(/\p{Cc}/gu, ' ').trim().slice(0, MAX_NAME_LENGTH)
}

/**
 * Turns a peer's awareness `user` field, which any client can set to anything, into a value safe
 * to put in the DOM: a bounded name and a colour that is a plain hex value (it ends up in CSS).
 * @param {unknown} user
 * @returns {User}
 */
export function sanitizeUser (user) {
  const record = typeof user === 'object' && user !== null ? /** @type {Record<string, unknown>} */ (user) : {}
  const name = cleanName(record.name) || 'Anonymous'
  const color = typeof record.color === 'string' && /^#[0-9a-f]{6}$/i.test(record.color)
    ? record.color
    : FALLBACK_COLOR
  return { name, color, colorLight: lighten(color) }
}

/**
 * Replaces every peer's `user` field with its sanitized form as it arrives. y-codemirror.next
 * writes a peer's colour straight into a `style` attribute, so an unchecked value would let any
 * client inject CSS (say, a background image URL that reports who is reading) into every editor.
 * Must be called before the editor is created: awareness listeners run in registration order.
 * @param {import('y-protocols/awareness').Awareness} awareness
 */
export function guardRemoteUsers (awareness) {
  awareness.on('change', (/** @type {{ added: number[], updated: number[] }} */ { added, updated }) => {
    for (const clientId of [...added, ...updated]) {
      const state = awareness.getStates().get(clientId)
      // Only peers: our own state is built from sanitized parts already.
      if (clientId !== awareness.clientID && state !== undefined && state !== null) {
        state.user = sanitizeUser(state.user)
      }
    }
  })
}

/**
 * The translucent variant used for remote selections.
 * @param {string} color `#rrggbb`
 * @returns {string}
 */
export function lighten (color) {
  return `${color}33`
}

/**
 * `color` with the low two bits of its blue channel replaced by `step`: the same colour to the eye,
 * but a different string after each rename. y-codemirror.next (0.3.6) redraws a remote caret only
 * when its colour string changes (its widget's `eq` compares colours alone), so without this the
 * other users would keep seeing the old name on this tab's cursor.
 * @param {string} color `#rrggbb`
 * @param {number} step
 * @returns {string}
 */
export function nudge (color, step) {
  const blue = Number.parseInt(color.slice(5, 7), 16)
  const shifted = (blue & ~3) | (step & 3)
  return color.slice(0, 5) + shifted.toString(16).padStart(2, '0')
}

/**
 * A colour with the rename nudge removed, for comparing two users' colours.
 * @param {string} color
 * @returns {string}
 */
export function baseColor (color) {
  return /^#[0-9a-f]{6}$/i.test(color) ? nudge(color.toLowerCase(), 0) : color
}

/**
 * Whether this tab should change colour because someone else already wears it: of two tabs with
 * one colour, the one with the higher client id moves, so exactly one of them does. Returns the
 * colours in use by others when this tab must move, else null.
 * @param {Map<number, Record<string, unknown>>} states awareness.getStates()
 * @param {number} selfId
 * @returns {Set<string> | null}
 */
export function colorClash (states, selfId) {
  const mine = baseColor(sanitizeUser(states.get(selfId)?.user).color)
  const taken = new Set()
  let mustMove = false
  for (const [clientId, state] of states) {
    if (clientId === selfId) continue
    const theirs = baseColor(sanitizeUser(state?.user).color)
    taken.add(theirs)
    if (theirs === mine && clientId < selfId) mustMove = true
  }
  return mustMove ? taken : null
}

/**
 * Web storage can throw (disabled cookies, some private modes); the demo must still work then,
 * just without remembering anything.
 * @param {Storage | undefined} storage
 */
function safeStorage (storage) {
  return {
    /** @param {string} key */
    get (key) {
      try { return storage?.getItem(key) ?? null } catch { return null }
    },
    /** @param {string} key @param {string | null} value */
    set (key, value) {
      try {
        if (value === null) storage?.removeItem(key)
        else storage?.setItem(key, value)
      } catch { /* not remembering is acceptable */ }
    }
  }
}

/**
 * This tab's identity, plus a way to rename it.
 * @param {{ local?: Storage, session?: Storage, random?: () => number }} [env]
 */
export function loadIdentity ({ local, session, random = Math.random } = {}) {
  const saved = safeStorage(local)
  const tab = safeStorage(session)

  // sessionStorage keeps the random name and colour across reloads of this tab only.
  const tabName = cleanName(tab.get(TAB_NAME_KEY)) || randomName(random)
  tab.set(TAB_NAME_KEY, tabName)
  const storedColor = tab.get(TAB_COLOR_KEY)
  let color = storedColor !== null && PALETTE.includes(storedColor) ? storedColor : randomColor(random)
  tab.set(TAB_COLOR_KEY, color)

  let name = cleanName(saved.get(SAVED_NAME_KEY)) || tabName
  let renames = 0
  /** @returns {User} */
  const user = () => {
    const shown = nudge(color, renames)
    return { name, color: shown, colorLight: lighten(shown) }
  }

  return {
    user,
    /**
     * Moves this tab to a palette colour nobody in `taken` uses (kept if every colour is taken).
     * @param {Set<string>} taken base colours, as returned by {@link colorClash}
     * @returns {User}
     */
    recolor (taken) {
      const free = PALETTE.filter(candidate => !taken.has(baseColor(candidate)))
      if (free.length > 0) {
        color = free[Math.floor(random() * free.length)]
        tab.set(TAB_COLOR_KEY, color)
      }
      return user()
    },
    /** The name the user chose, or '' while they use the random one. */
    chosenName: () => cleanName(saved.get(SAVED_NAME_KEY)),
    /** The random name this tab falls back to. */
    tabName,
    /**
     * Sets the displayed name; an empty name goes back to this tab's random one.
     * @param {string} typed
     * @returns {User}
     */
    rename (typed) {
      const cleaned = cleanName(typed)
      saved.set(SAVED_NAME_KEY, cleaned === '' ? null : cleaned)
      const next = cleaned || tabName
      if (next !== name) renames++
      name = next
      return user()
    }
  }
}
