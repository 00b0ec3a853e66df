// pitchMeter listens to a Hemicycle page's audio the way a citizen hears it. Run it in the page,
// page.evaluate(pitchMeter, 'name'), after exposing or defining window.name: every 20 ms it
// connects any new audio element under #audio-sinks to one analyser and, each time the dominant
// pitch changes, calls window.name({ t: 'pitch', hz, at }) with hz 440 (the members' test tone),
// 1000 (the bleep), 0 (silence) or -1 (both at once), and at the wall-clock time in ms.
// Used by console-bleep.test.mjs and by test/broadcast/watch.mjs.
export function pitchMeter (report) {
  const ctx = new AudioContext()
  const analyser = ctx.createAnalyser()
  analyser.fftSize = 8192
  analyser.smoothingTimeConstant = 0
  const seen = new Set()
  const bins = new Float32Array(analyser.frequencyBinCount)
  const binOf = (hz) => Math.round(hz * analyser.fftSize / ctx.sampleRate)
  const level = (hz) => Math.max(bins[binOf(hz) - 1], bins[binOf(hz)], bins[binOf(hz) + 1])
  let last = null
  setInterval(() => {
    for (const el of document.querySelectorAll('#audio-sinks audio')) {
      if (!seen.has(el) && el.srcObject) {
        seen.add(el)
        ctx.createMediaStreamSource(el.srcObject).connect(analyser)
      }
    }
    if (ctx.state !== 'running') ctx.resume()
    analyser.getFloatFrequencyData(bins)
    const low = level(440)
    const high = level(1000)
    let hz = 0
    if (Math.max(low, high) > -70) hz = low > high + 15 ? 440 : high > low + 15 ? 1000 : -1
    if (hz !== last) {
      last = hz
      window[report]({ t: 'pitch', hz, at: Date.now() })
    }
  }, 20)
}
