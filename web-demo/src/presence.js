// The "here now" list: one row per connected tab, built from awareness states.

import { sanitizeUser } from './identity.js'

/**
 * @typedef {{ clientId: number, name: string, color: string, initials: string, isSelf: boolean }} PresenceEntry
 */

/**
 * One or two letters for the avatar; Array.from keeps an emoji or accented letter whole.
 * @param {string} name
 * @returns {string}
 */
export function initials (name) {
  const words = name.split(/\s+/).filter(Boolean)
  const letters = words.slice(0, 2).map(word => Array.from(word)[0] ?? '')
  return letters.join('').toUpperCase() || '?'
}

/**
 * Who is here, you first and then by name. A state without a `user` field is a tab that has not
 * announced itself yet (or a non-demo client); it is still someone in the room, so it is listed.
 * @param {Map<number, Record<string, unknown>>} states awareness.getStates()
 * @param {number} selfId
 * @returns {PresenceEntry[]}
 */
export function presenceEntries (states, selfId) {
  /** @type {PresenceEntry[]} */
  const entries = []
  for (const [clientId, state] of states) {
    const user = sanitizeUser(state?.user)
    entries.push({ clientId, name: user.name, color: user.color, initials: initials(user.name), isSelf: clientId === selfId })
  }
  return entries.sort((a, b) => Number(b.isSelf) - Number(a.isSelf) || a.name.localeCompare(b.name) || a.clientId - b.clientId)
}

/**
 * @param {HTMLElement} list the <ul>
 * @param {HTMLElement} count where "2 people" goes
 * @param {PresenceEntry[]} entries
 */
export function renderPresence (list, count, entries) {
  const doc = list.ownerDocument
  list.replaceChildren(...entries.map(entry => {
    const item = doc.createElement('li')
    item.className = 'person'
    item.dataset.clientId = String(entry.clientId)
    if (entry.isSelf) item.dataset.self = 'true'

    const avatar = doc.createElement('span')
    avatar.className = 'avatar'
    avatar.style.backgroundColor = entry.color
    avatar.textContent = entry.initials
    avatar.setAttribute('aria-hidden', 'true')

    const name = doc.createElement('span')
    name.className = 'person-name'
    name.textContent = entry.name // textContent, never innerHTML: names come from other people

    item.append(avatar, name)
    if (entry.isSelf) {
      const you = doc.createElement('span')
      you.className = 'you'
      you.textContent = 'you'
      item.append(you)
    }
    return item
  }))
  count.textContent = entries.length === 1 ? 'just you' : `${entries.length} people`
}

/**
 * Keeps `list` in step with the awareness states.
 * @param {import('y-protocols/awareness').Awareness} awareness
 * @param {HTMLElement} list
 * @param {HTMLElement} count
 */
export function watchPresence (awareness, list, count) {
  const render = () => renderPresence(list, count, presenceEntries(awareness.getStates(), awareness.clientID))
  // 'change' rather than 'update': the 15 s keep-alive renewals change nothing on screen.
  awareness.on('change', render)
  render()
}
