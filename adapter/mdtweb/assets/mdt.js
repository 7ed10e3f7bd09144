// The MDT pages' only script: starts the NHS.UK frontend's components and
// keeps the page live. It listens to /mdt/events (Server-Sent Events) and,
// when a referral the page shows changes, fetches the page's fragment again
// (rendered by the server, as the page was) and puts it in place. No
// framework; without JavaScript the pages work and a reload updates them.
import { initAll } from './nhsuk/nhsuk-frontend.min.js'

document.body.classList.add('js-enabled', 'nhsuk-frontend-supported')
initAll()

const status = document.getElementById('mdt-live-status')
if (status && 'EventSource' in window) {
  const url = status.dataset.liveUrl
  const referral = status.dataset.referral
  const region = document.getElementById('mdt-live')
  const text = document.getElementById('mdt-live-text')
  let timer = null
  let inflight = false
  let again = false
  let source = null

  const say = (msg) => { text.textContent = msg }

  const refresh = async () => {
    if (inflight) { again = true; return }
    inflight = true
    try {
      const res = await fetch(url, { credentials: 'same-origin', cache: 'no-store' })
      if (res.status === 401) {
        say('You have been signed out. Reload the page to sign in again.')
        if (source) source.close()
        return
      }
      if (!res.ok) { say('The page could not be updated. It will try again at the next change.'); return }
      const html = await res.text()
      // Keep the keyboard focus where it was when the element is still there.
      const active = document.activeElement
      const focusedId = active && region.contains(active) ? active.id : ''
      const tpl = document.createElement('template')
      tpl.innerHTML = html
      region.replaceChildren(tpl.content)
      if (focusedId) { const el = document.getElementById(focusedId); if (el) el.focus() }
      say('Updated at ' + new Date().toLocaleTimeString('en-GB', { timeZone: 'Europe/London' }))
      document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1)
    } catch (e) {
      say('The page could not be updated. It will try again at the next change.')
    } finally {
      inflight = false
      if (again) { again = false; schedule() }
    }
  }
  // Changes often come in bursts (a contact, then its coded entry): one
  // fetch for a burst.
  const schedule = () => { clearTimeout(timer); timer = setTimeout(refresh, 100) }

  source = new EventSource('/mdt/events')
  let connectedBefore = false
  source.addEventListener('open', () => {
    document.body.dataset.live = 'connected'
    // Back after a drop: changes may have been missed.
    if (connectedBefore) schedule()
    connectedBefore = true
    say('Live: changes appear as they happen.')
  })
  source.addEventListener('error', () => {
    if (source.readyState === EventSource.CLOSED) {
      document.body.dataset.live = 'closed'
      say('Live updates stopped. Reload the page to see changes.')
    } else {
      document.body.dataset.live = 'reconnecting'
    }
  })
  source.addEventListener('referral', (e) => {
    const id = JSON.parse(e.data).referral
    if (!referral || referral === id) schedule()
  })
  source.addEventListener('resync', schedule)
}
