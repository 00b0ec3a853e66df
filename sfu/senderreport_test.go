package sfu

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// fromNTP turns a 64-bit NTP timestamp back into a time.
func fromNTP(ntp uint64) time.Time {
	secs := int64(ntp>>32) - ntpEpochOffset
	nanos := int64((ntp & 0xffffffff) * uint64(time.Second) >> 32)
	return time.Unix(secs, nanos)
}

func TestNTPTimeRoundTrip(t *testing.T) {
	for _, at := range []time.Time{
		time.Date(2026, 11, 27, 17, 45, 0, 0, time.UTC),
		time.Date(2036, 2, 7, 6, 28, 15, 999_999_000, time.UTC), // the last second of NTP era 0
		time.Unix(0, 500_000_000),
	} {
		got := fromNTP(ntpTime(at))
		if d := got.Sub(at); d < -time.Nanosecond || d > time.Nanosecond {
			t.Errorf("%v: NTP round trip gives %v", at, got)
		}
	}
	// Known values: 1970 is NTP second 2208988800 (0x83aa7e80); half a second is 0x8000 in the
	// 16-bit fraction of LSR and DLSR.
	if got := ntpTime(time.Unix(0, 500_000_000)); got != 0x83aa7e80_80000000 {
		t.Errorf("ntpTime(1970-01-01 00:00:00.5) = %#x, want 0x83aa7e8080000000", got)
	}
	if got := ntpShort(time.Unix(0, 500_000_000)); got != 0x7e808000 {
		t.Errorf("ntpShort(1970-01-01 00:00:00.5) = %#x, want 0x7e808000", got)
	}
}

// A subscriber receives, once a second, a sender report for the stream it gets, whose RTP time
// matches the timestamps of the packets it received at that wall-clock time, and whose counts
// match what it received.
func TestSenderReportsReachSubscribers(t *testing.T) {
	e := newTestEngine(t, false)
	defer func() { _ = e.Close() }()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()

	pub := publishRTP(t, e, clientOptions{}, opusCapability, "TR_mic", "PA_pub")
	audio := pub.track
	// Opus every 20 ms, its timestamp on the wall clock (48 kHz from the first packet), from a
	// random-looking origin so that a report that ignored the rewrite could not match.
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		start := time.Now()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case now := <-tick.C:
				ts := 0x9abc0000 + uint32(now.Sub(start)*48000/time.Second)
				pkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: uint16(i), Timestamp: ts}, Payload: []byte{0xfc, byte(i), 1, 2, 3}}
				if err := audio.WriteRTP(pkt); err != nil {
					return
				}
			}
		}
	}()
	mic := firstTrack(t, pub.tracks)

	type arrival struct {
		at time.Time
		ts uint32
	}
	type report struct {
		at time.Time
		sr rtcp.SenderReport
	}
	var mu sync.Mutex
	var arrivals []arrival
	var reports []report
	var payloadBytes uint32
	var ssrc uint32
	sub := newTestPeer(t, newClientAPI(t, clientOptions{}))
	sub.pc.OnTrack(func(remote *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
		mu.Lock()
		ssrc = uint32(remote.SSRC())
		mu.Unlock()
		go func() {
			for {
				pkts, _, err := recv.ReadRTCP()
				if err != nil {
					return
				}
				now := time.Now()
				for _, p := range pkts {
					if sr, ok := p.(*rtcp.SenderReport); ok {
						mu.Lock()
						reports = append(reports, report{now, *sr})
						mu.Unlock()
					}
				}
			}
		}()
		for {
			pkt, _, err := remote.ReadRTP()
			if err != nil {
				return
			}
			mu.Lock()
			arrivals = append(arrivals, arrival{time.Now(), pkt.Timestamp})
			payloadBytes += uint32(len(pkt.Payload))
			mu.Unlock()
		}
	})
	subT := subscribe(t, e, sub)
	if _, err := subT.Subscribe(mic, "TR_mic", "PA_pub"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "three sender reports", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(reports) >= 3
	})

	mu.Lock()
	defer mu.Unlock()
	for i, r := range reports {
		if r.sr.SSRC != ssrc {
			t.Fatalf("report %d is about SSRC %d, the stream received is %d", i, r.sr.SSRC, ssrc)
		}
		// The packets received by the time the report arrived: the report counts no more than
		// were sent before it, and no fewer than arrived a moment before it was written.
		var before, recent int
		var lastBefore *arrival
		for j := range arrivals {
			if arrivals[j].at.Before(r.at) {
				before++
				lastBefore = &arrivals[j]
			}
			if arrivals[j].at.Before(r.at.Add(-200 * time.Millisecond)) {
				recent++
			}
		}
		if c := int(r.sr.PacketCount); c < recent || c > before+5 {
			t.Errorf("report %d counts %d packets; the subscriber had %d 200 ms before it and %d when it came", i, c, recent, before)
		}
		if r.sr.OctetCount == 0 || r.sr.OctetCount > payloadBytes {
			t.Errorf("report %d counts %d payload octets (all received: %d)", i, r.sr.OctetCount, payloadBytes)
		}
		// Its RTP time is the stream's timestamp at its NTP time: extrapolate from the last
		// packet received before it. Loopback and scheduling make a few ms; 50 ms is 2400 ticks.
		if lastBefore == nil {
			t.Fatalf("report %d came before any packet", i)
		}
		wall := fromNTP(r.sr.NTPTime)
		if d := r.at.Sub(wall); d < 0 || d > time.Second {
			t.Errorf("report %d stamped %v, received %v later", i, wall, d)
		}
		want := lastBefore.ts + uint32(wall.Sub(lastBefore.at)*48000/time.Second)
		if off := int32(r.sr.RTPTime - want); off < -2400 || off > 2400 {
			t.Errorf("report %d: RTP time %d, but the stream's timestamp at that time was about %d (%d ticks off)", i, r.sr.RTPTime, want, off)
		}
	}
	// Once a second, and the two clocks advance together.
	first, last := reports[0], reports[len(reports)-1]
	span := fromNTP(last.sr.NTPTime).Sub(fromNTP(first.sr.NTPTime))
	if n := len(reports) - 1; span < time.Duration(n)*800*time.Millisecond || span > time.Duration(n)*1200*time.Millisecond {
		t.Errorf("%d reports over %v: not one a second", len(reports), span)
	}
	ticks := last.sr.RTPTime - first.sr.RTPTime
	if rate := float64(ticks) / span.Seconds(); rate < 47000 || rate > 49000 {
		t.Errorf("RTP time advanced at %.0f Hz between reports, want 48 kHz", rate)
	}
}
