package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

// benchReport is the outcome of one run, printed as a table and optionally written as JSON.
// Rates are over the measurement window; server figures are absent without --server-pid.
type benchReport struct {
	Scenario    string    `json:"scenario"`
	URL         string    `json:"url"`
	Room        string    `json:"room"`
	Started     time.Time `json:"started"`
	Listeners   int       `json:"listeners,omitempty"`
	Councillors int       `json:"councillors,omitempty"`
	Viewers     int       `json:"viewers,omitempty"`
	Joins       int       `json:"joins,omitempty"`
	Rate        float64   `json:"join_rate_per_s"`

	ParticipantsPlanned int `json:"participants_planned"`
	ParticipantsJoined  int `json:"participants_joined"`
	JoinFailures        int `json:"join_failures"`
	StreamsExpected     int `json:"streams_expected"`
	StreamsReceiving    int `json:"streams_receiving"`

	WindowSeconds    float64 `json:"window_s"`
	Packets          int64   `json:"packets_received"`
	AudioPackets     int64   `json:"audio_packets_received"`
	VideoPackets     int64   `json:"video_packets_received"`
	Bytes            int64   `json:"bytes_received"`
	PacketsPerSecond float64 `json:"forwarded_packets_per_s"`
	MbitPerSecond    float64 `json:"forwarded_mbit_per_s"`
	PacketsExpected  int64   `json:"packets_expected"`
	PacketsLost      int64   `json:"packets_lost"`
	LossRatio        float64 `json:"loss_ratio"`

	ServerPID int `json:"server_pid,omitempty"`
	// ServerCPUCores is the server's user+system CPU time over the window divided by its length.
	ServerCPUCores *float64 `json:"server_cpu_cores,omitempty"`
	// ServerSystemCPUCores is the part of ServerCPUCores spent in the kernel (stime): for an
	// SFU mostly its sends, which over loopback also pay for the receivers' side of each packet.
	ServerSystemCPUCores  *float64 `json:"server_system_cpu_cores,omitempty"`
	PacketsPerSecondCore  *float64 `json:"forwarded_packets_per_s_per_core,omitempty"`
	ServerCPUMicrosPacket *float64 `json:"server_cpu_us_per_packet,omitempty"`
	// ServerCPUPerStream is core-milliseconds per second per forwarded stream (down-track).
	ServerCPUPerStream *float64 `json:"server_cpu_core_ms_per_stream_s,omitempty"`
	ServerRSSBefore    int64    `json:"server_rss_before_bytes,omitempty"`
	ServerRSSUnderLoad int64    `json:"server_rss_under_load_bytes,omitempty"`
	ServerRSSPerPart   *float64 `json:"server_rss_per_participant_bytes,omitempty"`

	BenchCPUCores float64 `json:"bench_cpu_cores"`
	// OtherCPUCores is the machine's busy time outside the bench and the server (all of it
	// but the bench's without --server-pid): another process on the cores skews every figure.
	OtherCPUCores *float64 `json:"other_cpu_cores,omitempty"`
	// Run-queue wait: seconds the process's threads spent ready to run but without a CPU,
	// per second of the window. Above a few percent, other work on the machine starved it.
	ServerRunQueueWait *float64 `json:"server_runqueue_wait_s_per_s,omitempty"`
	BenchRunQueueWait  *float64 `json:"bench_runqueue_wait_s_per_s,omitempty"`

	JoinPhase   joinPhase `json:"join_phase"`
	JoinTime    latency   `json:"join_time"`
	ConnectTime latency   `json:"connect_time"`
	Delay       latency   `json:"one_way_delay"`

	SendErrors          int64    `json:"send_errors"`
	Malformed           int64    `json:"malformed_packets"`
	ImplausibleStamps   int64    `json:"implausible_stamps"`
	ErrorCount          int      `json:"error_count"`
	Errors              []string `json:"errors,omitempty"`
	Warnings            []string `json:"warnings,omitempty"`
	BenchGoroutinesLeft int      `json:"bench_goroutines_left"`
}

// joinPhase is the server's cost of the receivers' joins, measured while they joined.
type joinPhase struct {
	Seconds            float64  `json:"seconds"`
	Joined             int      `json:"joined"`
	Failed             int      `json:"failed"`
	ServerCPUCores     *float64 `json:"server_cpu_cores,omitempty"`
	ServerCPUMsPerJoin *float64 `json:"server_cpu_ms_per_join,omitempty"`
	BenchCPUCores      float64  `json:"bench_cpu_cores"`
	OtherCPUCores      *float64 `json:"other_cpu_cores,omitempty"`
}

// latency is a latencySummary in milliseconds, for people and for JSON.
type latency struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

func newLatency(s latencySummary) latency {
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return latency{Count: s.Count, P50: ms(s.P50), P99: ms(s.P99), Max: ms(s.Max)}
}

// benchSaturated is the bench's own CPU use above which its figures say more about the load
// generator than about the server (the bench is meant to have one core to itself).
const benchSaturated = 0.9

// otherLoadTolerated is how much CPU the rest of the machine may use during the window before
// the report says the figures are disturbed (kernel threads and softirqs alone use a little).
const otherLoadTolerated = 0.15

// starvedWait is the run-queue wait per second above which a process counts as starved.
const starvedWait = 0.05

// derive computes the rates and ratios from the counts, and the warnings.
func (r *benchReport) derive() {
	if r.WindowSeconds > 0 {
		r.PacketsPerSecond = float64(r.Packets) / r.WindowSeconds
		r.MbitPerSecond = float64(r.Bytes) * 8 / r.WindowSeconds / 1e6
	}
	if r.PacketsExpected > 0 {
		r.LossRatio = float64(r.PacketsLost) / float64(r.PacketsExpected)
	}
	if c := r.ServerCPUCores; c != nil && *c > 0 {
		v := r.PacketsPerSecond / *c
		r.PacketsPerSecondCore = &v
	}
	if c := r.ServerCPUCores; c != nil && r.Packets > 0 {
		v := *c * r.WindowSeconds * 1e6 / float64(r.Packets)
		r.ServerCPUMicrosPacket = &v
	}
	if c := r.ServerCPUCores; c != nil && r.StreamsReceiving > 0 {
		v := *c * 1000 / float64(r.StreamsReceiving)
		r.ServerCPUPerStream = &v
	}
	if r.ServerRSSUnderLoad > 0 && r.ParticipantsJoined > 0 {
		v := float64(r.ServerRSSUnderLoad-r.ServerRSSBefore) / float64(r.ParticipantsJoined)
		r.ServerRSSPerPart = &v
	}
	if r.JoinFailures > 0 {
		r.Warnings = append(r.Warnings, fmt.Sprintf("%d of %d participants failed to join", r.JoinFailures, r.ParticipantsPlanned))
	}
	if r.StreamsReceiving < r.StreamsExpected {
		r.Warnings = append(r.Warnings, fmt.Sprintf("only %d of %d expected streams received media in the window", r.StreamsReceiving, r.StreamsExpected))
	}
	if r.BenchCPUCores > benchSaturated || r.JoinPhase.BenchCPUCores > benchSaturated {
		r.Warnings = append(r.Warnings, fmt.Sprintf("the bench itself used %.2f cores (%.2f while joining): it may be the bottleneck, not the server",
			r.BenchCPUCores, r.JoinPhase.BenchCPUCores))
	}
	if r.ServerCPUCores != nil && r.OtherCPUCores != nil && *r.OtherCPUCores > otherLoadTolerated {
		r.Warnings = append(r.Warnings, fmt.Sprintf("other processes used %.2f cores during the window: the machine was not quiet, figures are disturbed", *r.OtherCPUCores))
	}
	for _, w := range []struct {
		who  string
		wait *float64
	}{{"server", r.ServerRunQueueWait}, {"bench", r.BenchRunQueueWait}} {
		if w.wait != nil && *w.wait > starvedWait {
			r.Warnings = append(r.Warnings, fmt.Sprintf("the %s waited %.0f ms per second for a CPU: it was starved, its latency figures are the machine's", w.who, 1000**w.wait))
		}
	}
	if r.BenchGoroutinesLeft > 0 {
		r.Warnings = append(r.Warnings, fmt.Sprintf("%d bench goroutines still running after teardown", r.BenchGoroutinesLeft))
	}
}

func (r *benchReport) shape() string {
	switch r.Scenario {
	case scenarioAudioFanout:
		return fmt.Sprintf("1 audio publisher → %d listeners", r.Listeners)
	case scenarioCouncil:
		return fmt.Sprintf("%d councillors (audio+video, all see all) + %d viewers of councillor 1", r.Councillors, r.Viewers)
	case scenarioJoinStorm:
		return fmt.Sprintf("1 audio publisher, %d joins at %g/s", r.Joins, r.Rate)
	}
	return ""
}

// writeTable prints the report for people: one figure per line, units spelled out.
func (r *benchReport) writeTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(name, format string, args ...any) {
		fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{name}, args...)...)
	}
	row("scenario", "%s (%s)", r.Scenario, r.shape())
	row("server", "%s, room %s", r.URL, r.Room)
	row("participants", "%d joined of %d (%d failed)", r.ParticipantsJoined, r.ParticipantsPlanned, r.JoinFailures)
	row("streams", "%d receiving of %d expected", r.StreamsReceiving, r.StreamsExpected)
	row("window", "%.1f s", r.WindowSeconds)
	row("forwarded", "%.0f pkt/s (audio %d, video %d packets), %.2f Mbit/s",
		r.PacketsPerSecond, r.AudioPackets, r.VideoPackets, r.MbitPerSecond)
	row("receive loss", "%.3f%% (%d of %d packets, from sequence gaps)", 100*r.LossRatio, r.PacketsLost, r.PacketsExpected)
	if r.ServerCPUCores != nil {
		kernel := ""
		if r.ServerSystemCPUCores != nil {
			kernel = fmt.Sprintf(", %.3f of them in the kernel", *r.ServerSystemCPUCores)
		}
		row("server CPU", "%.3f cores (pid %d, utime+stime)%s", *r.ServerCPUCores, r.ServerPID, kernel)
		row("  per packet", "%s", fmtOpt(r.ServerCPUMicrosPacket, "%.1f µs"))
		row("  per stream", "%s", fmtOpt(r.ServerCPUPerStream, "%.3f core-ms per stream-second"))
		row("  pkt/s per core", "%s", fmtOpt(r.PacketsPerSecondCore, "%.0f"))
		row("server memory", "RSS %s before, %s under load: %s per participant",
			fmtBytes(float64(r.ServerRSSBefore)), fmtBytes(float64(r.ServerRSSUnderLoad)), fmtBytesOpt(r.ServerRSSPerPart))
	} else {
		row("server CPU", "not measured (give --server-pid)")
	}
	row("join time", "%s (WebSocket dial to first media packet)", fmtLatency(r.JoinTime, "joins"))
	row("connect time", "%s (WebSocket dial to transports connected)", fmtLatency(r.ConnectTime, "joins"))
	row("one-way delay", "%s (send stamp to receipt, same clock)", fmtLatency(r.Delay, "frames"))
	jp := r.JoinPhase
	jpLine := fmt.Sprintf("%.1f s for %d joins (%d failed)", jp.Seconds, jp.Joined, jp.Failed)
	if jp.ServerCPUCores != nil {
		jpLine += fmt.Sprintf(", server %.3f cores", *jp.ServerCPUCores)
	}
	if jp.ServerCPUMsPerJoin != nil {
		jpLine += fmt.Sprintf(", %.1f ms server CPU per join", *jp.ServerCPUMsPerJoin)
	}
	row("join phase", "%s", jpLine)
	row("bench CPU", "%.3f cores in the window, %.3f while joining", r.BenchCPUCores, jp.BenchCPUCores)
	if r.ServerRunQueueWait != nil || r.BenchRunQueueWait != nil {
		row("run-queue wait", "server %s, bench %s (ms per second ready but without a CPU)",
			fmtOpt(scaled(r.ServerRunQueueWait, 1000), "%.1f"), fmtOpt(scaled(r.BenchRunQueueWait, 1000), "%.1f"))
	}
	if r.OtherCPUCores != nil {
		who := "outside the bench and the server"
		if r.ServerCPUCores == nil {
			who = "outside the bench (the server included)"
		}
		row("other CPU", "%.3f cores %s in the window", *r.OtherCPUCores, who)
	}
	if r.SendErrors > 0 || r.Malformed > 0 || r.ImplausibleStamps > 0 {
		row("anomalies", "%d samples not sent; %d malformed packets and %d impossible stamps received",
			r.SendErrors, r.Malformed, r.ImplausibleStamps)
	}
	if r.ErrorCount > 0 {
		row("errors", "%d; first: %s", r.ErrorCount, r.Errors[0])
	}
	for _, warn := range r.Warnings {
		row("warning", "%s", warn)
	}
	return tw.Flush()
}

func (r *benchReport) writeJSONFile(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

func fmtLatency(l latency, what string) string {
	if l.Count == 0 {
		return "none measured"
	}
	return fmt.Sprintf("p50 %s, p99 %s, max %s over %d %s", fmtMs(l.P50), fmtMs(l.P99), fmtMs(l.Max), l.Count, what)
}

func fmtMs(ms float64) string {
	if ms < 10 {
		return fmt.Sprintf("%.2f ms", ms)
	}
	return fmt.Sprintf("%.0f ms", ms)
}

func fmtOpt(v *float64, format string) string {
	if v == nil {
		return "n/a"
	}
	return fmt.Sprintf(format, *v)
}

func scaled(v *float64, k float64) *float64 {
	if v == nil {
		return nil
	}
	x := *v * k
	return &x
}

func fmtBytesOpt(v *float64) string {
	if v == nil {
		return "n/a"
	}
	return fmtBytes(*v)
}

// fmtBytes prints a byte count in binary units; negative when memory was given back.
func fmtBytes(v float64) string {
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	units := []string{"B", "KiB", "MiB", "GiB"}
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return strings.TrimSpace(fmt.Sprintf("%s%.1f %s", sign, v, units[i]))
}
