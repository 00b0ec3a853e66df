package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/ingeco/hemicycle/cmd/hemicycle/clips"
)

// Limits that keep a mistyped command from overwhelming the machine the bench shares with the
// server, and from running forever.
const (
	maxBenchParticipants = 2000
	maxBenchDuration     = 30 * time.Minute
	maxBenchRate         = 500 // joins per second
	maxCouncillors       = 100
)

// benchConfig is one run of the load generator, from the command line.
type benchConfig struct {
	URL, Key, Secret string
	Scenario         string
	Room             string
	Listeners        int           // audio-fanout
	Councillors      int           // council
	Viewers          int           // council
	Joins            int           // join-storm
	Rate             float64       // joins per second, every scenario
	Duration         time.Duration // the measurement window
	Settle           time.Duration // longest wait for every stream before the window opens
	ServerPID        int
	JSONPath         string
	Verbose          bool
	CPUProfile       string
}

const benchUsage = `Usage: hemicycle bench --scenario audio-fanout|council|join-storm [flags]

Loads a LiveKit-protocol server on this machine with synthetic participants (the LiveKit Go SDK,
looped pre-encoded Opus and VP8, no decoding), then reports forwarded packets per second, server
CPU and memory, join time, one-way delay and loss. Only loopback URLs are accepted.

Scenarios:
  audio-fanout  1 audio publisher, --listeners subscribers of its track
  council       --councillors with audio and video who see each other, plus --viewers who
                receive councillor 1's (the floor holder's) video and audio
  join-storm    1 audio publisher, then --joins subscribers joining at --rate per second

Flags:
`

func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseBenchFlags(args, stdout, stderr)
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if cfg.Verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if !cfg.Verbose {
		// The SDK creates each peer connection's pion loggers from its package-level logger,
		// which prints every ICE state change of every bot; a per-room logger does not reach
		// them.
		clips.QuietSDK()
	}
	report, err := runBench(ctx, cfg, log)
	if err != nil {
		return fmt.Errorf("bench %s: %w", cfg.Scenario, err)
	}
	if err := report.writeTable(stdout); err != nil {
		return fmt.Errorf("print report: %w", err)
	}
	if cfg.JSONPath != "" {
		if err := report.writeJSONFile(cfg.JSONPath); err != nil {
			return err
		}
	}
	return nil
}

func parseBenchFlags(args []string, stdout, stderr io.Writer) (benchConfig, error) {
	var cfg benchConfig
	fs := subcommandFlags("bench", stdout, stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), benchUsage)
		fs.PrintDefaults()
	}
	fs.StringVar(&cfg.URL, "url", "ws://127.0.0.1:7880", "server URL (loopback only)")
	fs.StringVar(&cfg.Key, "key", "devkey", "API key the bots sign their tokens with")
	fs.StringVar(&cfg.Secret, "secret", "secret", "API secret for --key")
	fs.StringVar(&cfg.Scenario, "scenario", "", "audio-fanout, council or join-storm")
	fs.StringVar(&cfg.Room, "room", "", "room name (default: bench-SCENARIO-RANDOM)")
	fs.IntVar(&cfg.Listeners, "listeners", 100, "audio-fanout: subscribers")
	fs.IntVar(&cfg.Councillors, "councillors", 10, "council: councillors publishing audio and video")
	fs.IntVar(&cfg.Viewers, "viewers", 50, "council: watch-only viewers")
	fs.IntVar(&cfg.Joins, "joins", 200, "join-storm: joiners")
	fs.Float64Var(&cfg.Rate, "rate", 20, "joins started per second")
	fs.DurationVar(&cfg.Duration, "duration", 30*time.Second, "measurement window, once everyone has joined")
	fs.DurationVar(&cfg.Settle, "settle", 10*time.Second, "longest wait for every stream's first packet before measuring")
	fs.IntVar(&cfg.ServerPID, "server-pid", 0, "server process to measure CPU and memory of (from /proc)")
	fs.StringVar(&cfg.JSONPath, "json", "", "also write the report as JSON to this file")
	fs.BoolVar(&cfg.Verbose, "verbose", false, "log each join and the SDK's own messages")
	fs.StringVar(&cfg.CPUProfile, "cpuprofile", "", "write the bench's own CPU profile over the window to this file (is the generator the bottleneck?)")
	if err := parseOptions(fs, args); err != nil {
		return cfg, err
	}
	return cfg, cfg.validate()
}

func (c *benchConfig) validate() error {
	var errs []error
	if err := checkLoopbackURL(c.URL); err != nil {
		errs = append(errs, err)
	}
	if c.Key == "" || c.Secret == "" {
		errs = append(errs, errors.New("--key and --secret must not be empty"))
	}
	switch c.Scenario {
	case scenarioAudioFanout:
		if c.Listeners < 1 {
			errs = append(errs, fmt.Errorf("--listeners %d: need at least 1", c.Listeners))
		}
	case scenarioCouncil:
		if c.Councillors < 1 || c.Councillors > maxCouncillors {
			errs = append(errs, fmt.Errorf("--councillors %d: want 1 to %d", c.Councillors, maxCouncillors))
		}
		if c.Viewers < 0 {
			errs = append(errs, fmt.Errorf("--viewers %d: must not be negative", c.Viewers))
		}
	case scenarioJoinStorm:
		if c.Joins < 1 {
			errs = append(errs, fmt.Errorf("--joins %d: need at least 1", c.Joins))
		}
	case "":
		errs = append(errs, errors.New("--scenario is required: audio-fanout, council or join-storm"))
	default:
		errs = append(errs, fmt.Errorf("--scenario %q: want audio-fanout, council or join-storm", c.Scenario))
	}
	if n := c.participants(); n > maxBenchParticipants {
		errs = append(errs, fmt.Errorf("%d participants: the bench refuses more than %d", n, maxBenchParticipants))
	}
	if !(c.Rate > 0 && c.Rate <= maxBenchRate) { // also rejects NaN
		errs = append(errs, fmt.Errorf("--rate %g: want more than 0 and at most %d joins per second", c.Rate, maxBenchRate))
	}
	if c.Duration < time.Second || c.Duration > maxBenchDuration {
		errs = append(errs, fmt.Errorf("--duration %s: want 1s to %s", c.Duration, maxBenchDuration))
	}
	if c.Settle < 0 || c.Settle > 2*time.Minute {
		errs = append(errs, fmt.Errorf("--settle %s: want 0 to 2m", c.Settle))
	}
	if c.ServerPID < 0 {
		errs = append(errs, fmt.Errorf("--server-pid %d: not a process id", c.ServerPID))
	} else if c.ServerPID > 0 {
		if _, err := readProcCPU(c.ServerPID); err != nil {
			errs = append(errs, fmt.Errorf("--server-pid: %w", err))
		}
	}
	return errors.Join(errs...)
}

// participants is how many bots the scenario joins; 0 for an unknown scenario.
func (c *benchConfig) participants() int {
	switch c.Scenario {
	case scenarioAudioFanout:
		return 1 + max(c.Listeners, 0)
	case scenarioCouncil:
		return max(c.Councillors, 0) + max(c.Viewers, 0)
	case scenarioJoinStorm:
		return 1 + max(c.Joins, 0)
	}
	return 0
}

// checkLoopbackURL accepts only servers on this machine: the bench is a load generator, and
// pointed elsewhere it would be a denial of service. Host names other than localhost are
// refused rather than resolved, so that DNS cannot send the load away.
func checkLoopbackURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("--url %q: %w", raw, err)
	}
	switch u.Scheme {
	case "ws", "wss", "http", "https":
	default:
		return fmt.Errorf("--url %q: scheme must be ws, wss, http or https", raw)
	}
	host := u.Hostname()
	if strings.EqualFold(host, "localhost") {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("--url %q: host %q is not loopback (127.0.0.0/8, ::1 or localhost); the bench only loads servers on this machine", raw, host)
}

func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// lookupProcess reports whether a process with this id exists, for a clearer message when the
// server dies under load.
func lookupProcess(pid int) bool {
	_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
	return err == nil
}
