package signaling_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/signaling"
	"github.com/ingeco/hemicycle/signaling/signalingtest"
)

// scrape reads /metrics as Prometheus would.
type scrape map[string]*dto.MetricFamily

func scrapeMetrics(t *testing.T, url string) scrape {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: status %d", url, resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("scrape %s: not the Prometheus text format: %v", url, err)
	}
	return families
}

// value returns the value of the sample of family name whose labels include all of labels
// ("k=v" pairs), and whether there is one.
func (s scrape) value(name string, labels ...string) (float64, bool) {
	f := s[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for _, kv := range labels {
			k, v, _ := strings.Cut(kv, "=")
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue(), true
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue(), true
		case m.GetHistogram() != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

func (s scrape) must(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	v, ok := s.value(name, labels...)
	if !ok {
		t.Fatalf("no sample %s%v in the scrape", name, labels)
	}
	return v
}

func TestMetricsScrapedWhileMediaFlows(t *testing.T) {
	ts := startServer(t)
	metrics := signaling.NewMetrics(ts.Signaling)
	hs := httptest.NewServer(metrics.Handler())
	defer hs.Close()

	idle := scrapeMetrics(t, hs.URL)
	if n := idle.must(t, "hemicycle_rooms"); n != 0 {
		t.Errorf("rooms = %v before anyone joined", n)
	}
	for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_cpu_seconds_total", "process_resident_memory_bytes"} {
		if _, ok := idle.value(name); !ok {
			t.Errorf("no %s: the runtime and process collectors are missing", name)
		}
	}

	alice := join(t, ts, "council", "alice", nil)
	publish(t, alice, true)
	bobRx, cb := signalingtest.NewReceiver()
	bob := join(t, ts, "council", "bob", cb)
	signalingtest.Eventually(t, "bob receives audio and video", 15*time.Second, func() bool {
		return bobRx.Audio() >= 25 && bobRx.Video() >= 10
	})

	// What bob has got before the scrape, the server had sent before it.
	gotAudio, gotVideo := bobRx.Audio(), bobRx.Video()
	first := scrapeMetrics(t, hs.URL)
	if n := first.must(t, "hemicycle_rooms"); n != 1 {
		t.Errorf("rooms = %v, want 1", n)
	}
	if n := first.must(t, "hemicycle_participants", "role=member"); n != 2 {
		t.Errorf("members = %v, want 2", n)
	}
	if n := first.must(t, "hemicycle_participants", "role=viewer"); n != 0 {
		t.Errorf("viewers = %v, want 0", n)
	}
	for _, kind := range []string{"audio", "video"} {
		if n := first.must(t, "hemicycle_published_tracks", "kind="+kind); n != 1 {
			t.Errorf("published %s tracks = %v, want 1", kind, n)
		}
		if n := first.must(t, "hemicycle_subscribed_tracks", "kind="+kind); n != 1 {
			t.Errorf("subscribed %s tracks = %v, want 1 (bob's)", kind, n)
		}
	}
	if n := first.must(t, "hemicycle_join_seconds", "until=first_media"); n != 1 {
		t.Errorf("first-media join times observed: %v, want 1 (bob; alice subscribes to nothing)", n)
	}
	if n := first.must(t, "hemicycle_join_seconds", "until=connected"); n < 1 {
		t.Errorf("connected join times observed: %v, want at least alice's", n)
	}

	// The counters grow while media flows, and the server counted at least what bob got.
	signalingtest.Eventually(t, "bob receives more audio", 15*time.Second, func() bool { return bobRx.Audio() >= gotAudio+25 })
	second := scrapeMetrics(t, hs.URL)
	for _, c := range []struct {
		kind string
		got  int
	}{{"audio", gotAudio}, {"video", gotVideo}} {
		in1, in2 := first.must(t, "hemicycle_packets_total", "direction=in", "kind="+c.kind), second.must(t, "hemicycle_packets_total", "direction=in", "kind="+c.kind)
		out1, out2 := first.must(t, "hemicycle_packets_total", "direction=out", "kind="+c.kind), second.must(t, "hemicycle_packets_total", "direction=out", "kind="+c.kind)
		if out1 < float64(c.got) {
			t.Errorf("%s packets out = %v at the first scrape, but bob had already received %d", c.kind, out1, c.got)
		}
		if c.kind == "audio" && (in2 <= in1 || out2 <= out1) {
			t.Errorf("audio packets did not grow between scrapes: in %v -> %v, out %v -> %v", in1, in2, out1, out2)
		}
		if b := second.must(t, "hemicycle_bytes_total", "direction=out", "kind="+c.kind); b < 12*out2 {
			t.Errorf("%s bytes out = %v for %v packets: less than an RTP header each", c.kind, b, out2)
		}
	}

	// Bob leaves: the gauges drop, the counters keep what his tracks carried.
	bob.Disconnect()
	signalingtest.Eventually(t, "bob's departure shows in the metrics", 15*time.Second, func() bool {
		s := scrapeMetrics(t, hs.URL)
		return s.must(t, "hemicycle_participants", "role=member") == 1 && s.must(t, "hemicycle_subscribed_tracks", "kind=audio") == 0
	})
	after := scrapeMetrics(t, hs.URL)
	for _, kind := range []string{"audio", "video"} {
		if a, b := second.must(t, "hemicycle_packets_total", "direction=out", "kind="+kind), after.must(t, "hemicycle_packets_total", "direction=out", "kind="+kind); b < a {
			t.Errorf("%s packets out went backwards when bob left: %v -> %v", kind, a, b)
		}
	}

	families, err := metrics.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(families).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "hemicycle_") {
			t.Errorf("lint: %s: %s", p.Metric, p.Text)
		}
	}
}

func TestMetricsQuorumFromTheDesk(t *testing.T) {
	ts, _ := startCouncilServer(t)
	hs := httptest.NewServer(signaling.NewMetrics(ts.Signaling).Handler())
	defer hs.Close()
	const room = "conseil"
	if _, ok := scrapeMetrics(t, hs.URL).value("hemicycle_quorum_required", "room="+room); ok {
		t.Fatal("quorum reported for a room without a session")
	}
	_, clerk := openSession(t, ts, room, "fr-commune")

	check := func(wantPresent int) {
		t.Helper()
		state := must(t, ts, "GET", "/api/rooms/"+room+"/state", clerk, nil)
		q := state["quorum"].(map[string]any)
		s := scrapeMetrics(t, hs.URL)
		present, required := s.must(t, "hemicycle_quorum_present", "room="+room), s.must(t, "hemicycle_quorum_required", "room="+room)
		if int(present) != wantPresent || present != q["counted"].(float64) {
			t.Errorf("quorum present = %v, want %d (the API says %v)", present, wantPresent, q["counted"])
		}
		if required != q["required"].(float64) || required == 0 {
			t.Errorf("quorum required = %v, the API says %v", required, q["required"])
		}
		reached := 0.0
		if q["reached"].(bool) {
			reached = 1
		}
		if got := s.must(t, "hemicycle_quorum_reached", "room="+room); got != reached {
			t.Errorf("quorum reached = %v, the API says %v", got, q["reached"])
		}
	}
	check(0)
	for seat := 1; seat <= 3; seat++ {
		must(t, ts, "POST", "/api/rooms/"+room+"/attendance/arrival", clerk, map[string]any{"seat": seat, "place": "chamber"})
		check(seat)
	}
	if v := scrapeMetrics(t, hs.URL).must(t, "hemicycle_quorum_reached", "room="+room); v != 1 {
		t.Errorf("3 of 5 members present: quorum reached = %v, want 1", v)
	}
}

func TestMetricsParticipantsByRole(t *testing.T) {
	ts := startServer(t)
	hs := httptest.NewServer(signaling.NewMetrics(ts.Signaling).Handler())
	defer hs.Close()
	for i, role := range []auth.Role{auth.RoleChair, auth.RoleViewer, auth.RoleViewer} {
		tok := ts.Mint(t, auth.TokenOptions{
			Identity: fmt.Sprintf("p%d", i), Room: "r", Video: auth.GrantsForRole(role, "r"), Council: &auth.CouncilGrant{Role: role},
		})
		signalingtest.Connect(t, ts.WS, tok, nil)
	}
	s := scrapeMetrics(t, hs.URL)
	for role, want := range map[string]float64{"chair": 1, "viewer": 2, "member": 0, "none": 0} {
		if got := s.must(t, "hemicycle_participants", "role="+role); got != want {
			t.Errorf("participants with role %s = %v, want %v", role, got, want)
		}
	}
}
