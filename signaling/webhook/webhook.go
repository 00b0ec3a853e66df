// Package webhook sends the server's events to the configured URLs as LiveKit does, with
// livekit/protocol's own notifier (webhook.URLNotifier): each POST carries a
// livekit.WebhookEvent as protojson, with an Authorization header holding a JWT signed by one
// of the server's API keys whose sha256 claim is the body's hash, so that LiveKit's receivers
// (webhook.Receive, the server SDKs' WebhookReceiver) verify it.
//
// The protocol's notifier queues each URL's events on a few workers (a room's events always
// on the same one, so they arrive in order), drops what does not fit (saying how many in the
// next event's num_dropped) and retries a failed POST with exponential backoff. This package
// adds what the protocol leaves to its server: one notifier per URL, the counts per URL for
// /metrics, a warning in the server's log for every event lost, and a stop bounded in time.
//
// Hemicycle's own events (a sitting opened, the quorum reached, a vote closed, the minutes
// approved) use the same envelope: a WebhookEvent named sitting_opened and so on, whose room
// carries, in place of the room's metadata, the facts of the event as JSON (see signaling's
// SittingFacts). A receiver that knows only LiveKit's events reads their name and room and
// can skip them.
package webhook

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/livekit/protocol/livekit"
	lklogger "github.com/livekit/protocol/logger"
	lkwebhook "github.com/livekit/protocol/webhook"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"
)

// The events Hemicycle adds to LiveKit's (whose names are the constants of
// github.com/livekit/protocol/webhook: room_started, participant_joined, ...).
const (
	SittingOpened = "sitting_opened"
	SittingClosed = "sitting_closed"
	QuorumReached = "quorum_reached"
	QuorumLost    = "quorum_lost"
	VoteClosed    = "vote_closed"
	// MinutesApproved: the chair or the clerk approved the closed sitting's minutes.
	MinutesApproved = "minutes_approved"
)

// Config says where events go and how they are signed and retried. The zero values of the
// numbers are the protocol's defaults.
type Config struct {
	// URLs receive every event.
	URLs []string `yaml:"urls"`
	// APIKey names the key pair of the server's keys that signs the deliveries, as LiveKit's
	// webhook.api_key does; APISecret is its secret (the deployment fills it from its keys).
	APIKey    string `yaml:"api_key"`
	APISecret string `yaml:"-"`
	// Workers send each URL's events (10 when 0); a room's events always go through the
	// same worker, in order. QueueSize bounds the events waiting for each worker (100 when
	// 0): beyond it they are dropped, counted and logged.
	Workers   int `yaml:"workers"`
	QueueSize int `yaml:"queue_size"`
	// MaxRetries is how many times a failed POST (no answer, 5xx, 429) is tried again (4 when
	// 0), waiting from RetryWaitMin to RetryWaitMax, doubling (1 s and 30 s when 0).
	MaxRetries   int           `yaml:"max_retries"`
	RetryWaitMin time.Duration `yaml:"retry_wait_min"`
	RetryWaitMax time.Duration `yaml:"retry_wait_max"`
	// Timeout bounds one POST (10 s when 0).
	Timeout time.Duration `yaml:"timeout"`
	// Grace is how long Close waits for the queued events to be delivered before it drops
	// them (2 s when 0).
	Grace time.Duration `yaml:"-"`
}

// Validate says what is wrong with the configuration, if anything.
func (c Config) Validate() error {
	if len(c.URLs) == 0 {
		return nil
	}
	if c.APIKey == "" || c.APISecret == "" {
		return errors.New("webhooks: an API key of the server's keys, and its secret, are needed to sign them (webhooks.api_key)")
	}
	for _, raw := range c.URLs {
		if u, err := url.Parse(raw); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("webhooks: URL %q: want http:// or https:// with a host", redact(raw))
		}
	}
	if c.Workers < 0 || c.QueueSize < 0 || c.MaxRetries < 0 || c.RetryWaitMin < 0 || c.RetryWaitMax < 0 || c.Timeout < 0 {
		return errors.New("webhooks: workers, queue_size, max_retries, retry_wait_min, retry_wait_max and timeout cannot be negative")
	}
	if c.RetryWaitMax > 0 && c.RetryWaitMin > c.RetryWaitMax {
		return fmt.Errorf("webhooks: retry_wait_min %v is longer than retry_wait_max %v", c.RetryWaitMin, c.RetryWaitMax)
	}
	return nil
}

// Notifier delivers events to every configured URL until Close.
type Notifier struct {
	log     *slog.Logger
	grace   time.Duration
	targets []*target
	closed  atomic.Bool
}

// target is one receiving URL, its protocol notifier and its counts.
type target struct {
	label    string // the URL without user info nor query, for logs and metrics
	notifier *lkwebhook.URLNotifier
	// pending counts the events queued and not yet settled (delivered, given up or dropped).
	pending                    atomic.Int64
	delivered, failed, dropped atomic.Uint64
}

// New checks cfg and returns a notifier for its URLs; with none, a notifier that does
// nothing. Workers start with the first event and end at Close.
func New(cfg Config, log *slog.Logger) (*Notifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	n := &Notifier{log: log, grace: cfg.Grace}
	if n.grace == 0 {
		n.grace = 2 * time.Second
	}
	if len(cfg.URLs) == 0 {
		return n, nil
	}
	// The protocol's notifier counts its sends in Prometheus's default registry, and panics
	// without them; our own counts, per URL, are the ones /metrics serves.
	lkwebhook.InitWebhookStats(nil)
	// Its own lines (one per event sent) go to the debug level; the losses that matter are
	// logged below as warnings.
	lklog := lklogger.LogRLogger(logr.FromSlogHandler(log.Handler()).V(1))
	labels := map[string]int{}
	for _, raw := range cfg.URLs {
		t := &target{label: redact(raw)}
		if labels[t.label]++; labels[t.label] > 1 { // URLs that differ only by what is hidden
			t.label += fmt.Sprintf("#%d", labels[t.label])
		}
		t.notifier = lkwebhook.NewURLNotifier(lkwebhook.URLNotifierParams{
			HTTPClientParams: lkwebhook.HTTPClientParams{
				RetryWaitMin:  cfg.RetryWaitMin,
				RetryWaitMax:  cfg.RetryWaitMax,
				MaxRetries:    cfg.MaxRetries,
				ClientTimeout: cfg.Timeout,
			},
			Logger:    lklog,
			Config:    lkwebhook.URLNotifierConfig{NumWorkers: cfg.Workers, QueueSize: cfg.QueueSize},
			URL:       raw,
			APIKey:    cfg.APIKey,
			APISecret: cfg.APISecret,
		})
		t.notifier.RegisterProcessedHook(func(_ context.Context, whi *livekit.WebhookInfo) { n.settled(t, whi) })
		n.targets = append(n.targets, t)
	}
	return n, nil
}

// Notify queues ev for every URL and returns at once: it never waits for a receiver. ev must
// not be changed afterwards. A nil Notifier, or one closed, ignores it.
func (n *Notifier) Notify(ev *livekit.WebhookEvent) {
	if n == nil || len(n.targets) == 0 || n.closed.Load() {
		return
	}
	if ev.Id == "" {
		ev.Id = "EV_" + rand.Text()[:12]
	}
	if ev.CreatedAt == 0 {
		ev.CreatedAt = time.Now().Unix()
	}
	for _, t := range n.targets {
		t.pending.Add(1)
		// Each URL's notifier writes num_dropped into the event it sends: one copy each.
		if err := t.notifier.QueueNotify(context.Background(), proto.CloneOf(ev)); err != nil {
			t.pending.Add(-1)
			t.dropped.Add(1)
			n.log.Warn("webhook dropped", "url", t.label, "event", ev.Event, "room", ev.GetRoom().GetName(), "err", err)
		}
	}
}

// settled is told by a URL's notifier of each event it is done with.
func (n *Notifier) settled(t *target, whi *livekit.WebhookInfo) {
	t.pending.Add(-1)
	switch {
	case whi.IsDropped:
		t.dropped.Add(1)
		n.log.Warn("webhook dropped: the URL's queue is full", "url", t.label, "event", whi.Event, "room", whi.RoomName)
	case whi.SendError != "":
		t.failed.Add(1)
		n.log.Warn("webhook not delivered", "url", t.label, "event", whi.Event, "room", whi.RoomName, "err", whi.SendError)
	default:
		t.delivered.Add(1)
	}
}

// Close stops taking events, waits up to the grace for the queued ones to be delivered, then
// stops every worker. A POST under way then still ends within its timeout and retries.
func (n *Notifier) Close() {
	if n == nil || n.closed.Swap(true) {
		return
	}
	deadline := time.Now().Add(n.grace)
	for n.queued() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	for _, t := range n.targets {
		t.notifier.Stop(true)
	}
}

func (n *Notifier) queued() int64 {
	var sum int64
	for _, t := range n.targets {
		sum += t.pending.Load()
	}
	return sum
}

// redact is a URL as logs and metrics show it: no user info, no query (either may hold a
// receiver's secret).
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}

var (
	deliveredDesc = prometheus.NewDesc("hemicycle_webhooks_delivered_total",
		"Webhook events the receiver answered without an error to retry (any status but 5xx and 429, as LiveKit counts them).", []string{"url"}, nil)
	failedDesc = prometheus.NewDesc("hemicycle_webhooks_failed_total",
		"Webhook events given up after every retry failed.", []string{"url"}, nil)
	droppedDesc = prometheus.NewDesc("hemicycle_webhooks_dropped_total",
		"Webhook events dropped because the URL's queue was full (the receiver is down or slow).", []string{"url"}, nil)
	queuedDesc = prometheus.NewDesc("hemicycle_webhooks_queued",
		"Webhook events waiting for delivery or being delivered.", []string{"url"}, nil)
)

// Describe and Collect make the Notifier a prometheus.Collector (signaling's metrics
// register it).
func (n *Notifier) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{deliveredDesc, failedDesc, droppedDesc, queuedDesc} {
		ch <- d
	}
}

func (n *Notifier) Collect(ch chan<- prometheus.Metric) {
	for _, t := range n.targets {
		ch <- prometheus.MustNewConstMetric(deliveredDesc, prometheus.CounterValue, float64(t.delivered.Load()), t.label)
		ch <- prometheus.MustNewConstMetric(failedDesc, prometheus.CounterValue, float64(t.failed.Load()), t.label)
		ch <- prometheus.MustNewConstMetric(droppedDesc, prometheus.CounterValue, float64(t.dropped.Load()), t.label)
		ch <- prometheus.MustNewConstMetric(queuedDesc, prometheus.GaugeValue, float64(max(0, t.pending.Load())), t.label)
	}
}
