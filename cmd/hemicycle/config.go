package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/cluster"
	"github.com/ingeco/hemicycle/council"
	"github.com/ingeco/hemicycle/signaling"
	"github.com/ingeco/hemicycle/signaling/mail"
	"github.com/ingeco/hemicycle/signaling/webhook"
)

// Config is the deployment configuration (configs/hemicycle.yaml documents every field).
// Precedence: flags over HEMICYCLE_* environment variables over the file over defaults.
type Config struct {
	Bind    string            `yaml:"bind"`
	Port    int               `yaml:"port"`
	RTC     RTCConfig         `yaml:"rtc"`
	Keys    map[string]string `yaml:"keys"`
	Logging LoggingConfig     `yaml:"logging"`
	DataDir string            `yaml:"data_dir"`
	// PublicURL is the WebSocket URL handed to browsers (ws://host:port or wss://…); derived from
	// bind and port when empty.
	PublicURL string `yaml:"public_url"`
	// TrustedProxies are the reverse proxies (addresses or CIDR ranges) whose X-Forwarded-For
	// names the client: behind one, every request comes from the proxy's address, and the
	// limits per address and the journal's "from where" would see only it.
	TrustedProxies []string        `yaml:"trusted_proxies"`
	Privacy        PrivacyConfig   `yaml:"privacy"`
	Broadcast      BroadcastConfig `yaml:"broadcast"`
	// Language (fr or en) of what the server writes for everyone: the recording's chapters and
	// bleep titles, and the minutes a reader downloads without asking for a language.
	Language string `yaml:"language"`
	// Redis, when it has an address, makes this node one of several (the cluster package) and
	// keeps journals in Redis instead of data_dir.
	Redis cluster.RedisConfig `yaml:"redis"`
	Node  NodeConfig          `yaml:"node"`
	// JournalKeys is the key ring file that signs the journals (hemicycle journal keys new),
	// the same file on every node so that each verifies what another signed. Required outside
	// --dev; in --dev it is made on first start (empty: DATA_DIR/journal-keys.json alone, the
	// published development key with Redis).
	JournalKeys string `yaml:"journal_keys"`
	// TURN is the embedded relay for members whose network passes no UDP, or only TCP 443.
	TURN TURNConfig `yaml:"turn"`
	// Invitations are the members' links to the sittings a clerk prepares.
	Invitations InvitationsConfig `yaml:"invitations"`
	// SMTP is the relay invitations are e-mailed through; none when smtp.addr is empty.
	SMTP mail.Relay `yaml:"smtp"`
	// Webhooks are POSTed, in LiveKit's format and signature, to webhooks.urls; signed with
	// the key pair webhooks.api_key names in keys (the only key when there is one).
	Webhooks webhook.Config `yaml:"webhooks"`
	// Speech is the speech-to-text engine that captions the speakers (docs/speech.md); none
	// when speech.engine_url is empty.
	Speech SpeechConfig `yaml:"speech"`
	// Sobriety holds the factors of the rooms' energy and CO2e estimate (docs/sobriety.md);
	// each left at zero takes its sourced default.
	Sobriety SobrietyConfig `yaml:"sobriety"`
	// Limits bound what a client, a room and this node may take; each refusal says why and is
	// counted in hemicycle_limit_refusals_total (docs/api.md, Limits).
	Limits signaling.Limits `yaml:"limits"`

	dev          bool
	profilerAddr string // --pprof: loopback address of Go's profiler, none when empty
}

// RTCConfig is the media plane's network setup.
type RTCConfig struct {
	UDPPort int `yaml:"udp_port"`
	TCPPort int `yaml:"tcp_port"`
	// PublicIPs are announced in ICE candidates instead of the local addresses (NAT 1:1).
	PublicIPs []string `yaml:"public_ips"`
	// BatchWrites sends the copies of each fan-out with sendmmsg (sfu.Config.BatchWrites).
	BatchWrites bool `yaml:"batch_writes"`
	// StreamAllocation fits what each subscriber receives to its link (pausing and lowering
	// videos); false sends everyone all they subscribed to (sfu.Config.DisableAllocation).
	// Nil: on.
	StreamAllocation *bool `yaml:"stream_allocation"`
	// Bind is where the media sockets (udp_port, tcp_port) listen; empty: the HTTP bind. A
	// server behind a reverse proxy binds HTTP to loopback and media to its public address.
	Bind string `yaml:"bind"`
}

// TURNConfig is the embedded TURN server (sfu.TURNServer).
type TURNConfig struct {
	Enabled bool `yaml:"enabled"`
	// Domain is the host name (or address) in the turn: and turns: URLs handed to clients; the
	// TLS certificate must name it. Empty: the first public IP, else the bind address.
	Domain string `yaml:"domain"`
	// Bind is where the TURN listeners listen; empty: the HTTP bind. A second address lets
	// TURN over TLS have port 443 while a reverse proxy holds 443 for HTTPS on the first.
	Bind string `yaml:"bind"`
	// Port carries TURN over UDP and over TCP; TLSPort TURN over TLS, when CertFile and
	// KeyFile are set. 0 picks a free port.
	Port     int    `yaml:"port"`
	TLSPort  int    `yaml:"tls_port"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// RelayPortMin-RelayPortMax are the relay sockets' ports; they talk only to this machine's
	// media port and need no opening in a firewall.
	RelayPortMin int `yaml:"relay_port_min"`
	RelayPortMax int `yaml:"relay_port_max"`
	// CredentialTTL is how long the credential a client gets at join (and at each resume)
	// stays valid: longer than a sitting, since an allocation is refreshed with it.
	CredentialTTL time.Duration `yaml:"credential_ttl"`
}

// SpeechConfig is the speech-to-text engine (signaling.SpeechConfig).
type SpeechConfig struct {
	// EngineURL is the engine's WebSocket, ws:// or wss://.
	EngineURL string `yaml:"engine_url"`
	// AtSittingStart runs recognition while a sitting is open; otherwise the chair starts it.
	AtSittingStart bool `yaml:"at_sitting_start"`
	// Language of the speech told to the engine; empty: language.
	Language string `yaml:"language"`
}

// speech is the engine signalling streams to, nil without one.
func (c *Config) speech() *signaling.SpeechConfig {
	s := c.Speech
	if s.EngineURL == "" {
		return nil
	}
	if s.Language == "" {
		s.Language = c.Language
	}
	return &signaling.SpeechConfig{EngineURL: s.EngineURL, AtSittingStart: s.AtSittingStart, Language: s.Language}
}

// NodeConfig names this node among several.
type NodeConfig struct {
	ID  string `yaml:"id"`  // unique in the cluster; random when empty
	URL string `yaml:"url"` // base HTTP URL other nodes reach this one on; derived from bind and port when empty
}

// InvitationsConfig says where members' links lead and from when they admit them.
type InvitationsConfig struct {
	// BaseURL is the web client's address the links start with (https://conseil.example.fr);
	// derived from public_url when empty.
	BaseURL string `yaml:"base_url"`
	// Early is how long before the sitting a link admits its member (30 min when 0).
	Early time.Duration `yaml:"early"`
}

// invitationsBase is the links' base address: base_url, else public_url's (ws becomes
// http), else the server's own.
func (c *Config) invitationsBase(httpURL string) string {
	if c.Invitations.BaseURL != "" {
		return c.Invitations.BaseURL
	}
	if c.PublicURL != "" {
		return "http" + strings.TrimPrefix(c.PublicURL, "ws")
	}
	return httpURL
}

// LoggingConfig chooses the log level and format.
type LoggingConfig struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // json or text
}

// BroadcastConfig is the public programme of each room (recording follows privacy.recorded).
type BroadcastConfig struct {
	Enabled    bool          `yaml:"enabled"`
	Delay      time.Duration `yaml:"delay"`
	HLS        bool          `yaml:"hls"`
	RTMPURL    string        `yaml:"rtmp_url"`
	MaxViewers int           `yaml:"max_viewers"`
	// Recording shapes the recording's picture (whether there is a recording is privacy.recorded).
	Recording RecordingConfig `yaml:"recording"`
}

// RecordingConfig is the recording's picture.
type RecordingConfig struct {
	// Interpreter insets the sign-language interpreter bottom-right, re-encoding the picture
	// (about a sixth of a core per recorded room); false copies the cameras' VP8 without it.
	Interpreter bool `yaml:"interpreter"`
	// Height of the re-encoded picture (360 when 0) and its bitrate in kb/s (600 when 0).
	Height       int `yaml:"height"`
	VideoBitrate int `yaml:"video_bitrate"`
}

// PrivacyConfig is what the notice before joining tells participants.
type PrivacyConfig struct {
	Broadcast     bool   `yaml:"broadcast" json:"broadcast"`
	Recorded      bool   `yaml:"recorded" json:"recorded"`
	RetentionDays int    `yaml:"retention_days" json:"retentionDays"`
	Controller    string `yaml:"controller" json:"controller"`
	Contact       string `yaml:"contact" json:"contact"`
}

func defaultConfig() Config {
	return Config{
		Bind:      "0.0.0.0",
		Port:      7880,
		RTC:       RTCConfig{UDPPort: 7882, TCPPort: 7881},
		TURN:      TURNConfig{Port: 3478, TLSPort: 443, RelayPortMin: 30000, RelayPortMax: 39999, CredentialTTL: 12 * time.Hour},
		Logging:   LoggingConfig{Level: "info", Format: "json"},
		DataDir:   "./data",
		Language:  "fr",
		Privacy:   PrivacyConfig{Broadcast: true, RetentionDays: 0},
		Broadcast: BroadcastConfig{Enabled: true, Delay: 10 * time.Second, Recording: RecordingConfig{Interpreter: true}},
		Limits:    signaling.DefaultLimits(),
	}
}

// devConfig is the zero-setup mode: loopback only, LiveKit's development key pair.
func devConfig() Config {
	c := defaultConfig()
	c.dev = true
	c.Bind = "127.0.0.1"
	c.Keys = map[string]string{"devkey": "secret"}
	c.Logging = LoggingConfig{Level: "info", Format: "text"}
	// The relay on loopback, on free ports: clients learn them from their JoinResponse, and
	// several development servers (tests) run side by side.
	c.TURN.Enabled, c.TURN.Port, c.TURN.TLSPort = true, 0, 0
	c.Privacy.Controller = "Hemicycle development server"
	c.Privacy.Contact = "nobody: this is a development server"
	// Every client of a development server is on this machine, and tests script hundreds of
	// joins and calls with one token: the limits per address and per token would only get in
	// the way. The totals, the sizes and the capacities hold.
	c.Limits.JoinsPerSecondPerAddress, c.Limits.APIRequestsPerSecondPerToken = 0, 0
	return c
}

func loadConfigFile(path string, into *Config) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read configuration: %w", err)
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(into); err != nil {
		return fmt.Errorf("configuration %s: %w", path, err)
	}
	return nil
}

// applyEnv reads HEMICYCLE_* overrides.
func applyEnv(c *Config, getenv func(string) string) error {
	if v := getenv("HEMICYCLE_TRUSTED_PROXIES"); v != "" {
		c.TrustedProxies = strings.Split(v, ",")
	}
	if v := getenv("HEMICYCLE_KEYS"); v != "" {
		keys, err := auth.ParseKeys(v)
		if err != nil {
			return fmt.Errorf("HEMICYCLE_KEYS: %w", err)
		}
		c.Keys = keys
	}
	for name, dst := range map[string]*string{
		"HEMICYCLE_BIND": &c.Bind, "HEMICYCLE_RTC_BIND": &c.RTC.Bind, "HEMICYCLE_LOG_LEVEL": &c.Logging.Level, "HEMICYCLE_LOG_FORMAT": &c.Logging.Format,
		"HEMICYCLE_DATA_DIR": &c.DataDir, "HEMICYCLE_JOURNAL_KEYS": &c.JournalKeys, "HEMICYCLE_PUBLIC_URL": &c.PublicURL, "HEMICYCLE_LANGUAGE": &c.Language,
		// several nodes
		"HEMICYCLE_REDIS_USERNAME": &c.Redis.Username, "HEMICYCLE_REDIS_PASSWORD": &c.Redis.Password,
		"HEMICYCLE_REDIS_KEY_PREFIX": &c.Redis.KeyPrefix, "HEMICYCLE_REDIS_SENTINEL_MASTER": &c.Redis.SentinelMaster,
		"HEMICYCLE_REDIS_TLS_CA_FILE": &c.Redis.TLSCAFile, "HEMICYCLE_REDIS_TLS_CERT_FILE": &c.Redis.TLSCertFile,
		"HEMICYCLE_REDIS_TLS_KEY_FILE": &c.Redis.TLSKeyFile, "HEMICYCLE_REDIS_TLS_SERVER_NAME": &c.Redis.TLSServerName,
		"HEMICYCLE_NODE_ID": &c.Node.ID, "HEMICYCLE_NODE_URL": &c.Node.URL,
		// the relay
		"HEMICYCLE_TURN_DOMAIN": &c.TURN.Domain, "HEMICYCLE_TURN_CERT_FILE": &c.TURN.CertFile, "HEMICYCLE_TURN_KEY_FILE": &c.TURN.KeyFile,
		// invitations
		"HEMICYCLE_INVITATIONS_BASE_URL": &c.Invitations.BaseURL,
		"HEMICYCLE_SMTP_ADDR":            &c.SMTP.Addr, "HEMICYCLE_SMTP_FROM": &c.SMTP.From, "HEMICYCLE_SMTP_TLS": &c.SMTP.TLS,
		"HEMICYCLE_SMTP_USERNAME": &c.SMTP.Username, "HEMICYCLE_SMTP_PASSWORD": &c.SMTP.Password,
		"HEMICYCLE_WEBHOOKS_API_KEY":  &c.Webhooks.APIKey,
		"HEMICYCLE_SPEECH_ENGINE_URL": &c.Speech.EngineURL,
	} {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	for name, dst := range map[string]*int{"HEMICYCLE_PORT": &c.Port, "HEMICYCLE_UDP_PORT": &c.RTC.UDPPort, "HEMICYCLE_TCP_PORT": &c.RTC.TCPPort} {
		if v := getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("%s=%q: not a port number", name, v)
			}
			*dst = n
		}
	}
	if v := getenv("HEMICYCLE_WEBHOOKS_URLS"); v != "" {
		c.Webhooks.URLs = strings.Split(v, ",")
	}
	if v := getenv("HEMICYCLE_PUBLIC_IPS"); v != "" {
		c.RTC.PublicIPs = strings.Split(v, ",")
	}
	if v := getenv("HEMICYCLE_REDIS_ADDR"); v != "" {
		// Comma-separated: several addresses are a Redis Cluster, or Sentinels with a master name.
		c.Redis.Address, c.Redis.Addresses = "", strings.Split(v, ",")
	}
	if v := getenv("HEMICYCLE_REDIS_TLS"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("HEMICYCLE_REDIS_TLS=%q: want true or false", v)
		}
		c.Redis.TLS = b
	}
	return nil
}

// SobrietyConfig is the sobriety: section: the factors of the report's estimate.
type SobrietyConfig struct {
	NetworkKWhPerGB   float64 `yaml:"network_kwh_per_gb"`
	ServerWattsPerCPU float64 `yaml:"server_watts_per_cpu"`
	GridGCO2ePerKWh   float64 `yaml:"grid_gco2e_per_kwh"`
	// Grid names the grid whose intensity is set (a country, a supplier's mix).
	Grid string `yaml:"grid"`
}

func (s SobrietyConfig) signaling() signaling.SobrietyConfig {
	return signaling.SobrietyConfig{NetworkKWhPerGB: s.NetworkKWhPerGB, ServerWattsPerCPU: s.ServerWattsPerCPU,
		GridGCO2ePerKWh: s.GridGCO2ePerKWh, Grid: s.Grid}
}

// validate refuses configurations that would run insecurely or not at all.
func (c *Config) validate() error {
	if _, err := parseTrustedProxies(c.TrustedProxies); err != nil {
		return err
	}
	if len(c.Keys) == 0 {
		return errors.New("no API keys: set keys in the configuration or HEMICYCLE_KEYS=\"key: secret\" (there is no default outside --dev)")
	}
	if err := auth.KeySet(c.Keys).Validate(c.dev); err != nil {
		return fmt.Errorf("API keys: %w", err)
	}
	if c.Port < 0 || c.Port > 65535 || c.RTC.UDPPort < 0 || c.RTC.UDPPort > 65535 || c.RTC.TCPPort < 0 || c.RTC.TCPPort > 65535 {
		return fmt.Errorf("ports must be 0-65535 (port %d, udp %d, tcp %d)", c.Port, c.RTC.UDPPort, c.RTC.TCPPort)
	}
	if c.RTC.Bind != "" && net.ParseIP(c.RTC.Bind) == nil {
		return fmt.Errorf("rtc.bind %q: want an IP address of this machine (the media sockets listen there)", c.RTC.Bind)
	}
	if _, err := parseLevel(c.Logging.Level); err != nil {
		return err
	}
	if c.Logging.Format != "json" && c.Logging.Format != "text" {
		return fmt.Errorf("logging.format %q: use json or text", c.Logging.Format)
	}
	if _, err := c.labels(); err != nil {
		return err
	}
	if err := c.Limits.Validate(); err != nil {
		return err
	}
	if err := c.Redis.Validate(); err != nil {
		return err
	}
	if err := c.validateTURN(); err != nil {
		return err
	}
	if c.SMTP.Addr != "" {
		if err := c.SMTP.Check(); err != nil {
			return err
		}
	}
	if u, err := url.Parse(c.Invitations.BaseURL); c.Invitations.BaseURL != "" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "") {
		return fmt.Errorf("invitations.base_url %q: want the https://host the members open the web client at", c.Invitations.BaseURL)
	}
	if _, err := c.webhooks(); err != nil {
		return err
	}
	if c.Invitations.Early < 0 {
		return fmt.Errorf("invitations.early %v: cannot be negative", c.Invitations.Early)
	}
	if u, err := url.Parse(c.Speech.EngineURL); c.Speech.EngineURL != "" && (err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "") {
		return fmt.Errorf("speech.engine_url %q: want the ws:// or wss:// address of the speech-to-text engine", c.Speech.EngineURL)
	}
	if c.Speech.AtSittingStart && c.Speech.EngineURL == "" {
		return errors.New("speech.at_sitting_start is on but speech.engine_url names no engine")
	}
	if s := c.Sobriety; s.NetworkKWhPerGB < 0 || s.ServerWattsPerCPU < 0 || s.GridGCO2ePerKWh < 0 {
		return fmt.Errorf("sobriety: factors cannot be negative (network_kwh_per_gb %v, server_watts_per_cpu %v, grid_gco2e_per_kwh %v)",
			s.NetworkKWhPerGB, s.ServerWattsPerCPU, s.GridGCO2ePerKWh)
	}
	if c.Node.URL != "" {
		if u, err := url.Parse(c.Node.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("node.url %q: want the http://host:port other nodes reach this one on", c.Node.URL)
		}
	}
	return nil
}

// webhooks is the webhooks' configuration with the secret of the key that signs them.
func (c *Config) webhooks() (webhook.Config, error) {
	w := c.Webhooks
	if len(w.URLs) == 0 {
		return w, nil
	}
	if w.APIKey == "" && len(c.Keys) == 1 {
		for key := range c.Keys {
			w.APIKey = key
		}
	}
	if w.APIKey == "" {
		return w, errors.New("webhooks: set webhooks.api_key to the key (of keys) that signs them")
	}
	if w.APISecret = c.Keys[w.APIKey]; w.APISecret == "" {
		return w, fmt.Errorf("webhooks.api_key %q is not one of the configured keys", w.APIKey)
	}
	return w, w.Validate()
}

// labels are the words of the configured language.
func (c *Config) labels() (council.Labels, error) {
	l, err := council.LabelsFor(c.Language)
	if err != nil {
		return council.Labels{}, fmt.Errorf("language %w", err)
	}
	return l, nil
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("logging.level %q: use debug, info, warn or error", s)
	}
	return l, nil
}

// logger writes the server's log to w (the process's standard error).
func (c *Config) logger(w io.Writer) *slog.Logger {
	level, _ := parseLevel(c.Logging.Level)
	opts := &slog.HandlerOptions{Level: level}
	if c.Logging.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

func (c *Config) validateTURN() error {
	t := c.TURN
	if !t.Enabled {
		return nil
	}
	if t.Port < 0 || t.Port > 65535 || t.TLSPort < 0 || t.TLSPort > 65535 {
		return fmt.Errorf("turn: ports must be 0-65535 (port %d, tls_port %d)", t.Port, t.TLSPort)
	}
	if t.RelayPortMin < 1 || t.RelayPortMax > 65535 || t.RelayPortMin > t.RelayPortMax {
		return fmt.Errorf("turn: relay ports %d-%d: want 1 <= relay_port_min <= relay_port_max <= 65535", t.RelayPortMin, t.RelayPortMax)
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return errors.New("turn: TURN over TLS needs both cert_file and key_file")
	}
	if t.CredentialTTL <= 0 {
		return fmt.Errorf("turn.credential_ttl %v: must be positive", t.CredentialTTL)
	}
	if c.turnHost() == "" {
		return errors.New("turn is enabled but clients would not know where to reach it: set turn.domain (the name its certificate carries), rtc.public_ips or a specific bind address")
	}
	if ip := c.turnRelayIP(); ip == nil || ip.To4() == nil {
		return fmt.Errorf("turn: the relay needs an IPv4 address to announce (turn.domain %q is a name: set rtc.public_ips or turn.bind)", t.Domain)
	}
	return nil
}

// turnBind is where the TURN listeners listen.
func (c *Config) turnBind() string {
	if c.TURN.Bind != "" {
		return c.TURN.Bind
	}
	return c.Bind
}

// turnHost is the host clients are told to reach TURN at.
func (c *Config) turnHost() string {
	switch {
	case c.TURN.Domain != "":
		return c.TURN.Domain
	case len(c.RTC.PublicIPs) > 0:
		return c.RTC.PublicIPs[0]
	}
	if ip := net.ParseIP(c.turnBind()); ip != nil && !ip.IsUnspecified() {
		return ip.String()
	}
	return ""
}

// turnRelayIP is the relay address announced to clients: the TURN host's when it is an
// address, else the first public IP, else the TURN bind address.
func (c *Config) turnRelayIP() net.IP {
	for _, s := range []string{c.TURN.Domain, firstOf(c.RTC.PublicIPs), c.turnBind()} {
		if ip := net.ParseIP(s); ip != nil && !ip.IsUnspecified() {
			return ip
		}
	}
	return nil
}

func firstOf(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}
