package sfu

import (
	"time"

	"github.com/pion/rtcp"
)

// senderReportInterval is how often each subscriber is told, for every stream it receives, how
// the stream's RTP clock maps to wall-clock time (an RTCP sender report). Browsers need it to
// play a speaker's audio and video in sync, and take from its echo (LSR and DLSR in their
// receiver reports) the round trip that rates the connection.
const senderReportInterval = time.Second

// maxReportsPerPacket keeps a compound RTCP packet of sender reports (28 bytes each) under a
// usual MTU after SRTCP's overhead.
const maxReportsPerPacket = 40

// ntpTime is the 64-bit NTP timestamp of t: seconds since 1900 and the fraction in 1/2^32 s.
func ntpTime(t time.Time) uint64 {
	secs := uint64(t.Unix()) + ntpEpochOffset
	frac := uint64(t.Nanosecond()) << 32 / uint64(time.Second)
	return secs<<32 | frac
}

// reportSenders sends every subscriber its sender reports each senderReportInterval, until
// stop is closed. One timer for the whole Engine and one compound packet per subscriber
// connection replace pion's sender-report interceptor, which took a lock and read the clock for
// every copy of every packet, and wrote one RTCP packet per stream.
func (e *Engine) reportSenders(stop <-chan struct{}) {
	defer close(e.reporterDone)
	tick := time.NewTicker(senderReportInterval)
	defer tick.Stop()
	var transports []*Transport
	var reports []rtcp.Packet
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			transports = e.liveTransports(transports[:0])
			for _, t := range transports {
				// Stamped as it is sent: the subscriber's reports echo the stamp, and the
				// round trip measured from it must not include the time spent on the others.
				reports = t.sendSenderReports(time.Now(), reports[:0])
			}
			clear(transports) // do not keep closed transports reachable until the next tick
		}
	}
}

// liveTransports appends the Engine's open transports to out.
func (e *Engine) liveTransports(out []*Transport) []*Transport {
	e.mu.Lock()
	defer e.mu.Unlock()
	for t := range e.transports {
		out = append(out, t)
	}
	return out
}

// sendSenderReports writes one sender report per DownTrack that has sent media, in as few
// compound packets as fit. It returns buf for reuse.
func (t *Transport) sendSenderReports(now time.Time, buf []rtcp.Packet) []rtcp.Packet {
	if !t.connected.Load() || !t.mediaFlows.Load() {
		return buf
	}
	for _, d := range t.boundDownTracks() {
		if sr, ok := d.senderReport(now); ok {
			buf = append(buf, sr)
		}
	}
	for start := 0; start < len(buf); start += maxReportsPerPacket {
		end := min(start+maxReportsPerPacket, len(buf))
		if err := t.pc.WriteRTCP(buf[start:end]); err != nil {
			t.log.Debug("sender reports not sent", "err", err)
			break
		}
	}
	clear(buf)
	return buf
}

// senderReport describes what this DownTrack sent, as of now; ok is false before its first
// packet. The RTP time is the last packet's, advanced by the wall-clock time since it arrived,
// which is how the subscriber's timeline runs (the munger keeps it on wall-clock time across
// layer switches and pauses).
func (d *DownTrack) senderReport(now time.Time) (*rtcp.SenderReport, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.writer == nil || !d.munger.started {
		return nil, false
	}
	elapsed := max(now.UnixNano()-d.munger.lastAt, 0)
	ticks := uint64(elapsed) * uint64(d.munger.clockRate) / uint64(time.Second)
	return &rtcp.SenderReport{
		SSRC:        d.ssrc,
		NTPTime:     ntpTime(now),
		RTPTime:     d.munger.lastTS + uint32(ticks),
		PacketCount: uint32(d.stats.packets.Load()),
		OctetCount:  d.payloadOctets,
	}, true
}
