// Line icons drawn from basic shapes (stroke follows the text colour through CSS).
import { svg } from './dom.js'

const slash = ['line', { x1: 3, y1: 3, x2: 21, y2: 21, class: 'slash' }]

export const icons = {
  mic: () => svg([
    ['rect', { x: 9, y: 3, width: 6, height: 11, rx: 3 }],
    ['path', { d: 'M5 11a7 7 0 0 0 14 0' }],
    ['line', { x1: 12, y1: 18, x2: 12, y2: 21 }],
    slash
  ]),
  camera: () => svg([
    ['rect', { x: 2, y: 6, width: 13, height: 12, rx: 2 }],
    ['path', { d: 'M15 10l7-4v12l-7-4z' }],
    slash
  ]),
  screen: () => svg([
    ['rect', { x: 2, y: 4, width: 20, height: 13, rx: 2 }],
    ['line', { x1: 8, y1: 21, x2: 16, y2: 21 }],
    ['line', { x1: 12, y1: 17, x2: 12, y2: 21 }]
  ]),
  leave: () => svg([
    ['path', { d: 'M14 4h5v16h-5' }],
    ['path', { d: 'M9 8l-4 4 4 4' }],
    ['line', { x1: 5, y1: 12, x2: 15, y2: 12 }]
  ]),
  // Three bars; CSS fills as many as the connection quality deserves.
  quality: () => svg([
    ['rect', { x: 3, y: 14, width: 4, height: 6, class: 'bar bar-1' }],
    ['rect', { x: 10, y: 9, width: 4, height: 11, class: 'bar bar-2' }],
    ['rect', { x: 17, y: 4, width: 4, height: 16, class: 'bar bar-3' }]
  ])
}
