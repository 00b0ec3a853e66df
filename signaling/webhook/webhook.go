// Package webhook delivers the server's events to the configured URLs in LiveKit's webhook
// format and signature: each POST carries a livekit.WebhookEvent as protojson, with an
// Authorization header holding a JWT signed by one of the server's API keys whose sha256 claim
// is the body's hash, so that LiveKit's own receivers (webhook.Receive, the server SDKs) verify
// it. Hemicycle's own events (a sitting opened, the quorum lost, a vote closed) are
// WebhookEvents too, named sitting_opened and so on, whose facts are under "hemicycle" in the
// body: a LiveKit receiver reads their name and room and skips the rest.
//
// Delivery never holds up the caller: Notify puts the event on a bounded queue per URL and
// returns; when a queue is full the event is dropped and counted (the next delivered event
// says how many in num_dropped, as LiveKit's do). One goroutine per URL sends its events in
// order, retrying a failed one with exponential backoff before giving up on it.
package webhook

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	lkauth "github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
	"github.com/livekit/protocol/utils/protojson"
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
)

// Event is one event to deliver: LiveKit's fields, and for Hemicycle's own events their facts.
type Event struct {
	*livekit.WebhookEvent
	// Hemicycle, when set, is written under "hemicycle" in the body.
	Hemicycle any
}

// Config configures delivery.
type Config struct {
	// URLs receive every event.
	URLs []string
	// Key and Secret sign the deliveries: one of the server's API key pairs, which receivers
	// know (LiveKit's webhook.api_key).
	Key, Secret string
	// QueueSize bounds the events waiting for each URL (256 when 0); beyond it they are dropped.
	QueueSize int
	// Attempts is how many times an event is tried before it is given up (5 when 0);
	// MinBackoff and MaxBackoff bound the wait between tries, doubling from the first (500 ms
	// and 30 s when 0).
	Attempts               int
	MinBackoff, MaxBackoff time.Duration
	// Timeout bounds one try (10 s when 0).
	Timeout time.Duration
	Logger  *slog.Logger
}

// Notifier delivers events to every configured URL until Close.
type Notifier struct {
	cfg     Config
	client  *http.Client
	log     *slog.Logger
	targets []*target

	ctx    context.Context
	cancel context.CancelFunc
	stop   chan struct{}
	once   sync.Once
	wg     sync.WaitGroup
}

// target is one receiving URL and its queue.
type target struct {
	url, label string // label: the URL without query or user info, for logs and metrics
	queue      chan Event
	// dropped counts the events dropped since the last delivery (told in num_dropped);
	// the totals are for metrics.
	dropped                     atomic.Int32
	delivered, failed, overflow atomic.Uint64
}

// New checks the configuration and starts a goroutine per URL; they end when ctx ends or
// Close has drained them.
func New(ctx context.Context, cfg Config) (*Notifier, error) {
	if cfg.Key == "" || cfg.Secret == "" {
		return nil, errors.New("webhooks: an API key and its secret are needed to sign them")
	}
	setDefault(&cfg.QueueSize, 256)
	setDefault(&cfg.Attempts, 5)
	setDefault(&cfg.MinBackoff, 500*time.Millisecond)
	setDefault(&cfg.MaxBackoff, 30*time.Second)
	setDefault(&cfg.Timeout, 10*time.Second)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	n := &Notifier{cfg: cfg, log: cfg.Logger, stop: make(chan struct{}),
		// No redirects: a receiver's 3xx is a misconfiguration to see, not to follow with the
		// signature.
		client: &http.Client{Timeout: cfg.Timeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	for _, raw := range cfg.URLs {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("webhooks: URL %q: want http:// or https:// with a host", raw)
		}
		label := *u
		label.User, label.RawQuery, label.Fragment = nil, "", ""
		n.targets = append(n.targets, &target{url: raw, label: label.String(), queue: make(chan Event, cfg.QueueSize)})
	}
	n.ctx, n.cancel = context.WithCancel(ctx)
	for _, t := range n.targets {
		n.wg.Go(func() { n.run(t) })
	}
	return n, nil
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// Notify queues ev for every URL and returns at once; it is dropped (and counted) where a
// queue is full. The event must not be changed afterwards. A nil Notifier ignores it.
func (n *Notifier) Notify(ev Event) {
	if n == nil || len(n.targets) == 0 {
		return
	}
	select {
	case <-n.stop:
		return
	default:
	}
	if ev.Id == "" {
		ev.Id = "EV_" + rand.Text()[:12]
	}
	if ev.CreatedAt == 0 {
		ev.CreatedAt = time.Now().Unix()
	}
	for _, t := range n.targets {
		select {
		case t.queue <- ev:
		default:
			t.dropped.Add(1)
			t.overflow.Add(1)
			n.log.Warn("webhook dropped: its queue is full", "url", t.label, "event", ev.Event, "room", ev.GetRoom().GetName())
		}
	}
}

// Close stops taking events, gives the queued ones until grace to be delivered, then stops
// every goroutine.
func (n *Notifier) Close(grace time.Duration) {
	if n == nil {
		return
	}
	n.once.Do(func() { close(n.stop) })
	timer := time.AfterFunc(grace, n.cancel)
	n.wg.Wait()
	timer.Stop()
	n.cancel()
}

func (n *Notifier) run(t *target) {
	for {
		select {
		case <-n.ctx.Done():
			return
		case ev := <-t.queue:
			n.deliver(t, ev)
		case <-n.stop:
			for {
				select {
				case ev := <-t.queue:
					n.deliver(t, ev)
				default:
					return
				}
				if n.ctx.Err() != nil {
					return
				}
			}
		}
	}
}

// deliver sends ev to t, retrying with backoff, until it is accepted (2xx), the attempts are
// spent or the notifier stops.
func (n *Notifier) deliver(t *target, ev Event) {
	wait := n.cfg.MinBackoff
	var err error
	for attempt := 1; attempt <= n.cfg.Attempts; attempt++ {
		if attempt > 1 {
			select {
			case <-n.ctx.Done():
				return
			case <-time.After(wait):
			}
			wait = min(2*wait, n.cfg.MaxBackoff)
		}
		if err = n.send(t, ev); err == nil {
			t.delivered.Add(1)
			return
		}
		if n.ctx.Err() != nil {
			return
		}
		n.log.Debug("webhook not delivered, retrying", "url", t.label, "event", ev.Event, "attempt", attempt, "err", err)
	}
	t.failed.Add(1)
	t.dropped.Add(1)
	n.log.Warn("webhook given up", "url", t.label, "event", ev.Event, "room", ev.GetRoom().GetName(), "attempts", n.cfg.Attempts, "err", err)
}

func (n *Notifier) send(t *target, ev Event) error {
	dropped := t.dropped.Load()
	body, err := encode(ev, dropped)
	if err != nil {
		return err
	}
	// Signed as LiveKit signs its webhooks: the body's hash in a short-lived API token.
	sum := sha256.Sum256(body)
	token, err := lkauth.NewAccessToken(n.cfg.Key, n.cfg.Secret).
		SetValidFor(5 * time.Minute).
		SetSha256(base64.StdEncoding.EncodeToString(sum[:])).
		ToJWT()
	if err != nil {
		return fmt.Errorf("sign webhook %s: %w", ev.Event, err)
	}
	req, err := http.NewRequestWithContext(n.ctx, http.MethodPost, t.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook request: %w", err)
	}
	req.Header.Set("Authorization", token)
	req.Header.Set("Content-Type", lkwebhook.ContentType)
	resp, err := n.client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10)) // lets the connection be reused
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("receiver answered %s", resp.Status)
	}
	t.dropped.Add(-dropped) // told now
	return nil
}

// encode writes ev as LiveKit does (protojson), with dropped as num_dropped and Hemicycle's
// facts under "hemicycle".
func encode(ev Event, dropped int32) ([]byte, error) {
	wire := &livekit.WebhookEvent{}
	if ev.WebhookEvent != nil {
		wire = proto.CloneOf(ev.WebhookEvent)
	}
	wire.NumDropped = dropped
	body, err := protojson.Marshal(wire)
	if err != nil {
		return nil, fmt.Errorf("encode webhook %s: %w", ev.Event, err)
	}
	if ev.Hemicycle == nil {
		return body, nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return nil, fmt.Errorf("encode webhook %s: %w", ev.Event, err)
	}
	if fields["hemicycle"], err = json.Marshal(ev.Hemicycle); err != nil {
		return nil, fmt.Errorf("encode webhook %s: its facts: %w", ev.Event, err)
	}
	return json.Marshal(fields)
}

var (
	deliveredDesc = prometheus.NewDesc("hemicycle_webhooks_delivered_total",
		"Webhook events the receiver accepted.", []string{"url"}, nil)
	failedDesc = prometheus.NewDesc("hemicycle_webhooks_failed_total",
		"Webhook events given up after every attempt failed.", []string{"url"}, nil)
	overflowDesc = prometheus.NewDesc("hemicycle_webhooks_dropped_total",
		"Webhook events dropped because the URL's queue was full (the receiver is down or slow).", []string{"url"}, nil)
	queuedDesc = prometheus.NewDesc("hemicycle_webhooks_queued",
		"Webhook events waiting for delivery.", []string{"url"}, nil)
)

// Describe and Collect make the Notifier a prometheus.Collector (cmd/hemicycle registers it).
func (n *Notifier) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{deliveredDesc, failedDesc, overflowDesc, queuedDesc} {
		ch <- d
	}
}

func (n *Notifier) Collect(ch chan<- prometheus.Metric) {
	for _, t := range n.targets {
		ch <- prometheus.MustNewConstMetric(deliveredDesc, prometheus.CounterValue, float64(t.delivered.Load()), t.label)
		ch <- prometheus.MustNewConstMetric(failedDesc, prometheus.CounterValue, float64(t.failed.Load()), t.label)
		ch <- prometheus.MustNewConstMetric(overflowDesc, prometheus.CounterValue, float64(t.overflow.Load()), t.label)
		ch <- prometheus.MustNewConstMetric(queuedDesc, prometheus.GaugeValue, float64(len(t.queue)), t.label)
	}
}
