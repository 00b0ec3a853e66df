// Small DOM helpers. Everything is built with createElement and textContent, never innerHTML,
// so that names typed by participants can never be interpreted as markup.

const SVG_NS = 'http://www.w3.org/2000/svg'

// h builds an element. props: class, text, dataset (object), on<Event> (listener), and any other
// key is set as a property when the element has one (value, checked, hidden, disabled, type…)
// or else as an attribute (aria-*, role, for…). null and undefined props are skipped.
export function h (tag, props = {}, ...children) {
  const el = document.createElement(tag)
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined) continue
    if (key === 'class') el.className = value
    else if (key === 'text') el.textContent = value
    else if (key === 'dataset') Object.assign(el.dataset, value)
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2).toLowerCase(), value)
    else if (key in el && !key.includes('-') && key !== 'role' && key !== 'for') el[key] = value
    else el.setAttribute(key, value === true ? '' : String(value))
  }
  append(el, children)
  return el
}

function append (el, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue
    el.append(child instanceof Node ? child : document.createTextNode(String(child)))
  }
}

// svg builds an icon from simple shapes; icons are decorative (the control's text names it).
export function svg (shapes, viewBox = '0 0 24 24') {
  const root = document.createElementNS(SVG_NS, 'svg')
  root.setAttribute('viewBox', viewBox)
  root.setAttribute('aria-hidden', 'true')
  root.setAttribute('focusable', 'false')
  root.setAttribute('class', 'icon')
  for (const [tag, attrs] of shapes) {
    const shape = document.createElementNS(SVG_NS, tag)
    for (const [k, v] of Object.entries(attrs)) shape.setAttribute(k, String(v))
    root.append(shape)
  }
  return root
}

// uniqueId returns a document-unique id for label/aria wiring.
let idCounter = 0
export function uniqueId (prefix) {
  idCounter += 1
  return `${prefix}-${idCounter}`
}

// focusHeading moves keyboard and screen-reader focus to a new screen's main heading, so that a
// screen change is announced and Tab continues from the top of the new content.
export function focusHeading (container) {
  const heading = container.querySelector('h1')
  if (!heading) return
  heading.tabIndex = -1
  heading.focus({ preventScroll: false })
}

export function clear (el) {
  while (el.firstChild) el.firstChild.remove()
}
