package signaling

import (
	"net/http"
	"sort"
	"sync/atomic"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/sfu"
)

// Metrics exports a signalling server, its media engine and its council desks to Prometheus.
// Everything is read when /metrics is scraped: the rooms and participants under their locks,
// and the media counters from the atomic counters the sfu keeps per track, so that the
// forwarding path does no extra work for metrics.
type Metrics struct {
	reg     *prometheus.Registry
	handler http.Handler
}

// NewMetrics builds a registry of its own (nothing is registered globally) holding the server's
// collector and the Go runtime and process collectors.
func NewMetrics(s *Server) *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		newServerCollector(s),
		s.limits.refusals, // limits.go
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	if s.webhooks != nil {
		reg.MustRegister(s.webhooks) // webhooks.go
	}
	return &Metrics{
		reg:     reg,
		handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slogPrinter{s}, Registry: reg}),
	}
}

// Handler serves the metrics in the Prometheus text format (or OpenMetrics, when asked).
func (m *Metrics) Handler() http.Handler { return m.handler }

// Registry lets the caller add collectors of its own (a cluster's, a broadcaster's).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// slogPrinter routes promhttp's gathering errors to the server's log.
type slogPrinter struct{ s *Server }

func (p slogPrinter) Println(v ...any) { p.s.log.Warn("metrics", "err", v) }

// joinBuckets are the upper bounds of the join-time histogram, in seconds: from a fast loopback
// join (tens of ms) to a join that waited for a peer-reflexive candidate or a TURN relay.
var joinBuckets = [...]float64{0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30}

// joinHistogram counts join times. Its zero value is ready, so the Server needs no set-up.
type joinHistogram struct {
	counts   [len(joinBuckets) + 1]atomic.Uint64 // the last one is +Inf
	sumNanos atomic.Int64
}

func (h *joinHistogram) observe(d time.Duration) {
	sec := d.Seconds()
	i := sort.SearchFloat64s(joinBuckets[:], sec) // first bound >= sec
	h.counts[i].Add(1)
	h.sumNanos.Add(int64(d))
}

// read returns the count, the sum in seconds and the cumulative bucket counts.
func (h *joinHistogram) read() (uint64, float64, map[float64]uint64) {
	buckets := make(map[float64]uint64, len(joinBuckets))
	var cum uint64
	for i, bound := range joinBuckets {
		cum += h.counts[i].Load()
		buckets[bound] = cum
	}
	cum += h.counts[len(joinBuckets)].Load()
	return cum, time.Duration(h.sumNanos.Load()).Seconds(), buckets
}

// serverEvents are what the signalling code records as it happens (the rest is read at scrape
// time). It lives in the Server; its zero value is ready.
type serverEvents struct {
	// joinToMedia: from the participant's admission (right after its WebSocket was upgraded) to
	// the first media packet the SFU sent it. Participants who subscribe to nothing are absent.
	joinToMedia joinHistogram
	// joinToConnected: from the admission to its publisher peer connection being connected
	// (signalling, ICE and DTLS done), which every participant goes through.
	joinToConnected joinHistogram
}

// firstMediaSent records the join time of a participant that has just received its first media.
func (p *Participant) firstMediaSent() {
	p.room.srv.events.joinToMedia.observe(time.Since(p.joinedAt))
}

// publisherConnected records the join time of a participant whose publisher connection has
// just connected for the first time.
func (p *Participant) publisherConnected() {
	p.room.srv.events.joinToConnected.observe(time.Since(p.joinedAt))
}

// serverCollector is the prometheus.Collector of a Server.
type serverCollector struct {
	s *Server

	rooms, participants               *prometheus.Desc
	connectionQuality                 *prometheus.Desc
	publishedTracks, subscribedTracks *prometheus.Desc
	packets, bytes, retransmits       *prometheus.Desc
	nacksReceived, nacksSent          *prometheus.Desc
	plisReceived, plisSent            *prometheus.Desc
	lost, late, duplicates, malformed *prometheus.Desc
	forwardErrors                     *prometheus.Desc
	joinSeconds                       *prometheus.Desc
	quorumPresent, quorumRequired     *prometheus.Desc
	quorumReached                     *prometheus.Desc
	bandwidth, queueing, pausedVideos *prometheus.Desc
	rtxSkipped                        *prometheus.Desc
}

func newServerCollector(s *Server) *serverCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("hemicycle_"+name, help, labels, nil)
	}
	return &serverCollector{
		s:                s,
		rooms:            d("rooms", "Rooms open on this node."),
		participants:     d("participants", "Participants in the rooms of this node, by council role (\"none\" for a token without a hemicycle claim); those waiting to resume included.", "role"),
		publishedTracks:  d("published_tracks", "Tracks received from publishers now.", "kind"),
		subscribedTracks: d("subscribed_tracks", "Tracks being sent to subscribers now (one per subscriber and track).", "kind"),
		packets:          d("packets_total", "RTP packets received from publishers (in) and sent to subscribers, retransmissions included (out).", "direction", "kind"),
		bytes:            d("bytes_total", "Bytes of RTP packets received from publishers (in, after decryption) and sent to subscribers (out, before encryption).", "direction", "kind"),
		retransmits:      d("retransmitted_packets_total", "Packets resent to subscribers in answer to their NACKs.", "kind"),
		nacksReceived:    d("nacks_received_total", "Packets that subscribers asked to be resent (sequence numbers named in their NACKs).", "kind"),
		nacksSent:        d("nacks_sent_total", "Packets the server asked publishers to resend (sequence numbers named in its NACKs)."),
		plisReceived:     d("plis_received_total", "Keyframe requests (PLI and FIR) received from subscribers.", "kind"),
		plisSent:         d("plis_sent_total", "Keyframe requests (PLI and FIR) sent to publishers."),
		lost:             d("upstream_lost_packets_total", "Packets missing from published streams when a later one arrived (sequence gaps); a retransmission may repair them later.", "kind"),
		late:             d("upstream_late_packets_total", "Packets from publishers that arrived behind the newest one (reordered, or repaired after a NACK).", "kind"),
		duplicates:       d("upstream_duplicate_packets_total", "Packets from publishers received a second time (resends used as probe padding); not forwarded.", "kind"),
		malformed:        d("upstream_malformed_packets_total", "Packets from publishers that could not be parsed as RTP.", "kind"),
		forwardErrors: d("forward_errors_total", "Packets not delivered to a subscriber: not_ready (its connection had no SRTP keys yet), "+
			"write_error (the send failed), undeliverable (the packet could not be rewritten for it).", "kind", "reason"),
		joinSeconds: d("join_seconds", "Join time from the participant's admission (its WebSocket just upgraded) until: first_media, "+
			"the first media packet the server sent it; connected, its publisher peer connection connected.", "until"),
		quorumPresent:  d("quorum_present", "Members counted towards the quorum now (present, or present and represented, per the legal profile), per room with an open session.", "room"),
		quorumRequired: d("quorum_required", "Members required for the quorum, per room with an open session.", "room"),
		quorumReached:  d("quorum_reached", "1 when the quorum is reached (or waived at a second convocation), else 0, per room with an open session.", "room"),
		bandwidth: d("subscriber_bandwidth_estimate_bits_per_second", "The server's estimate of what the link to each participant carries, "+
			"from its transport-cc feedback (absent until the first feedback).", "room", "participant"),
		queueing: d("subscriber_queueing_delay_seconds", "How long the latest packets to each participant waited in queues on the way, "+
			"as its transport-cc feedback shows.", "room", "participant"),
		pausedVideos: d("subscriber_paused_videos", "Videos the server paused for each participant because its link could not carry them.", "room", "participant"),
		rtxSkipped: d("retransmits_skipped_total", "Packets NACKed by subscribers but not resent: too late to be played, "+
			"or beyond the share of the subscriber's link that retransmissions may use.", "kind"),
		connectionQuality: d("participants_by_connection_quality", "Participants in the rooms of this node by the connection quality last sent to clients "+
			"(excellent, good, poor, lost; unknown until a participant's connection is up and rated).", "quality"),
	}
}

func (c *serverCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.rooms, c.participants, c.connectionQuality, c.publishedTracks, c.subscribedTracks, c.packets, c.bytes, c.retransmits,
		c.nacksReceived, c.nacksSent, c.plisReceived, c.plisSent, c.lost, c.late, c.duplicates, c.malformed, c.forwardErrors,
		c.joinSeconds, c.quorumPresent, c.quorumRequired, c.quorumReached,
		c.bandwidth, c.queueing, c.pausedVideos, c.rtxSkipped,
	} {
		ch <- d
	}
}

// roleLabels lists every role so that a role with nobody in it reads 0 rather than vanishing.
var roleLabels = []string{
	string(auth.RoleChair), string(auth.RoleClerk), string(auth.RoleMember), string(auth.RoleAgent),
	string(auth.RoleCaptioner), string(auth.RoleInterpreter), string(auth.RoleViewer), "none",
}

// qualityLabels lists every connection quality, so that an empty one reads 0.
var qualityLabels = []string{"excellent", "good", "poor", "lost", "unknown"}

func qualityLabel(info *livekit.ConnectionQualityInfo) string {
	if info == nil {
		return "unknown"
	}
	switch info.Quality {
	case livekit.ConnectionQuality_EXCELLENT:
		return "excellent"
	case livekit.ConnectionQuality_GOOD:
		return "good"
	case livekit.ConnectionQuality_POOR:
		return "poor"
	case livekit.ConnectionQuality_LOST:
		return "lost"
	}
	return "unknown"
}

func (c *serverCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}

	rooms := c.s.Rooms()
	gauge(c.rooms, float64(len(rooms)))
	byRole := map[string]int{}
	byQuality := map[string]int{}
	for _, r := range rooms {
		r.mu.Lock()
		for _, p := range r.participants {
			role := string(p.claims.Role())
			if role == "" {
				role = "none"
			}
			byRole[role]++
			byQuality[qualityLabel(p.quality)]++
			if st, ok := p.subscriber.Bandwidth(); ok && st.Fed {
				gauge(c.bandwidth, st.Estimate, r.name, p.identity)
				gauge(c.queueing, st.QueueingDelay.Seconds(), r.name, p.identity)
				gauge(c.pausedVideos, float64(st.PausedVideos), r.name, p.identity)
			}
		}
		r.mu.Unlock()
	}
	for _, role := range roleLabels {
		gauge(c.participants, float64(byRole[role]), role)
	}
	for _, q := range qualityLabels {
		gauge(c.connectionQuality, float64(byQuality[q]), q)
	}

	if media := c.s.cfg.Media; media != nil {
		st := media.Stats()
		for _, k := range []struct {
			kind string
			s    *sfu.MediaStats
		}{{webrtc.RTPCodecTypeAudio.String(), &st.Audio}, {webrtc.RTPCodecTypeVideo.String(), &st.Video}} {
			gauge(c.publishedTracks, float64(k.s.PublishedTracks), k.kind)
			gauge(c.subscribedTracks, float64(k.s.SubscribedTracks), k.kind)
			counter(c.packets, k.s.PacketsIn, "in", k.kind)
			counter(c.packets, k.s.PacketsOut, "out", k.kind)
			counter(c.bytes, k.s.BytesIn, "in", k.kind)
			counter(c.bytes, k.s.BytesOut, "out", k.kind)
			counter(c.retransmits, k.s.Retransmits, k.kind)
			counter(c.rtxSkipped, k.s.RetransmitsSkipped, k.kind)
			counter(c.nacksReceived, k.s.NACKsReceived, k.kind)
			counter(c.plisReceived, k.s.KeyframeRequestsReceived, k.kind)
			counter(c.lost, k.s.UpstreamLost, k.kind)
			counter(c.late, k.s.UpstreamLate, k.kind)
			counter(c.duplicates, k.s.UpstreamDuplicates, k.kind)
			counter(c.malformed, k.s.UpstreamMalformed, k.kind)
			counter(c.forwardErrors, k.s.NotReady, k.kind, "not_ready")
			counter(c.forwardErrors, k.s.WriteErrors, k.kind, "write_error")
			counter(c.forwardErrors, k.s.Undeliverable, k.kind, "undeliverable")
		}
		counter(c.nacksSent, st.NACKsSent)
		counter(c.plisSent, st.KeyframeRequestsSent)
	}

	for until, h := range map[string]*joinHistogram{
		"first_media": &c.s.events.joinToMedia,
		"connected":   &c.s.events.joinToConnected,
	} {
		n, sum, buckets := h.read()
		ch <- prometheus.MustNewConstHistogram(c.joinSeconds, n, sum, buckets, until)
	}

	c.collectQuorum(gauge)
}

// collectQuorum reads each loaded desk's quorum under the desk's lock, without touching the
// journal: a scrape never does I/O or loads a session.
func (c *serverCollector) collectQuorum(gauge func(*prometheus.Desc, float64, ...string)) {
	d := c.s.delib
	if d == nil {
		return
	}
	d.mu.Lock()
	desks := make([]*desk, 0, len(d.desks))
	for _, dk := range d.desks {
		desks = append(desks, dk)
	}
	d.mu.Unlock()
	for _, dk := range desks {
		dk.mu.Lock()
		st := dk.state
		if st == nil || !st.Session().ClosedAt.IsZero() {
			dk.mu.Unlock()
			continue
		}
		q := st.Quorum()
		dk.mu.Unlock()
		reached := 0.0
		if q.Reached || q.Waived {
			reached = 1
		}
		gauge(c.quorumPresent, float64(q.Counted), dk.room)
		gauge(c.quorumRequired, float64(q.Required), dk.room)
		gauge(c.quorumReached, reached, dk.room)
	}
}
