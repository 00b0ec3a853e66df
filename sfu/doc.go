// Package sfu is Hemicycle's media plane: a selective forwarding unit on pion/webrtc.
//
// An Engine owns the sockets (one UDP port for every peer, optionally one TCP port for ICE-TCP)
// and creates Transports, one pion PeerConnection each. A publisher Transport answers the
// client's offers and turns every incoming track into a PublishedTrack; a subscriber Transport
// makes the offers and carries DownTracks, one per subscriber and track.
//
// The forwarding path, per incoming RTP packet: the PublishedTrack's reader goroutine parses the
// header once, stores the packet in the track's packet cache (for NACKs), and hands it to every
// DownTrack in a copy-on-write list. Each DownTrack picks its simulcast layer, rewrites sequence
// number and timestamp so that its subscriber sees one continuous stream, and writes the packet.
// Nothing on that path allocates, and each DownTrack has its own lock. pion encrypts each copy
// and sends it with one sendto; with Config.BatchWrites the datagrams of a fan-out are queued by
// the Engine's socket and leave together in sendmmsg calls when the fan-out ends (batchConn).
// The subscriber connections have no pion interceptor: once a second one Engine-wide timer sends
// each subscriber a compound packet of sender reports, made from the DownTracks' own counters.
//
// Counters (packets, bytes, loss, NACKs, keyframe requests, forwarding errors) are atomics kept
// per track and per DownTrack; Engine.Stats sums them when asked, with the totals of the tracks
// that ended.
//
// A TURNServer (turn.go, pion/turn) relays for clients that reach no UDP, or only TCP 443: over
// UDP, TCP and TLS, with credentials in the TURN REST API scheme, and a relay that reaches only
// the Engine's own UDP sockets (turnrelay.go), so that it is no open relay.
//
// The package knows nothing of rooms or of the LiveKit protocol; the signaling package drives it.
package sfu
