// Media settings shared by the lobby and the room.
import { VideoPresets } from '../vendor/livekit-client.esm.mjs'

// qualityPresets are the camera resolutions offered in the lobby. "low" exists for sobriety and
// weak links: it sends about a quarter of standard's bits (DESIGN.md §9).
export const qualityPresets = {
  low: VideoPresets.h360,
  standard: VideoPresets.h720
}
