// Package broadcast makes the public programme of a room: what citizens see and hear, delayed
// so that the chair can bleep.
//
// The programme is produced on the server from the room's published tracks, without decoding:
// the speaker's camera (switched on keyframes, renumbered so that viewers see one stream), the
// interpreter's camera, and the open microphones, each forwarded to one of a few audio tracks.
// Every packet waits in a queue for the delay before it goes out on the programme's own tracks
// (sfu local tracks), which watch-only viewers subscribe to like any other track. A bleep
// replaces, at release time, the audio of the marked interval with a pre-encoded 1 kHz tone on
// the first audio track and silence on the others, so nothing of the original leaves the server.
//
// Recording, HLS and RTMP read the same programme tracks and hand them to ffmpeg over RTP on
// loopback, once ffmpeg listens, so that a file begins with the first packet sent and its
// chapters line up. HLS, RTMP and the recording show the interpreter inset in the corner (the
// recording can copy the cameras' VP8 instead, without it). The package knows nothing of rooms
// or councils: the signaling package says what is on air (Select) and gives the chapter marks.
package broadcast
