package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultKeyPrefix starts every key Hemicycle writes in Redis unless the configuration says
// otherwise; one Redis can then serve other applications too.
const DefaultKeyPrefix = "hemicycle:"

// RedisConfig says how to reach Redis. It is the `redis:` section of the configuration file.
// One address is a single server; several are a Redis Cluster; a sentinel master name turns
// the addresses into Sentinels (go-redis' universal client decides from these).
type RedisConfig struct {
	Address        string   `yaml:"address"`
	Addresses      []string `yaml:"addresses"`
	Username       string   `yaml:"username"`
	Password       string   `yaml:"password"`
	DB             int      `yaml:"db"`
	TLS            bool     `yaml:"tls"`
	KeyPrefix      string   `yaml:"key_prefix"`
	SentinelMaster string   `yaml:"sentinel_master"`

	// TLSCAFile is the PEM file of the CA that signed Redis's certificate (the town's own);
	// empty: the system's roots.
	TLSCAFile string `yaml:"tls_ca_file"`
	// TLSCertFile and TLSKeyFile are this node's client certificate, for a Redis that checks
	// its clients' certificates (tls-auth-clients yes).
	TLSCertFile string `yaml:"tls_cert_file"`
	TLSKeyFile  string `yaml:"tls_key_file"`
	// TLSServerName is the name Redis's certificate must carry; empty: the host of each
	// address dialled.
	TLSServerName string `yaml:"tls_server_name"`
}

// Enabled reports whether Redis is configured at all: without it a node runs alone.
func (c RedisConfig) Enabled() bool { return len(c.addrs()) > 0 }

func (c RedisConfig) addrs() []string {
	var out []string
	for _, a := range append([]string{c.Address}, c.Addresses...) {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// Prefix is the key prefix in use.
func (c RedisConfig) Prefix() string {
	if c.KeyPrefix == "" {
		return DefaultKeyPrefix
	}
	return c.KeyPrefix
}

// Validate refuses a configuration that cannot work, saying which field is wrong.
func (c RedisConfig) Validate() error {
	for _, a := range c.addrs() {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("redis address %q: want host:port: %w", a, err)
		}
	}
	if c.DB < 0 {
		return fmt.Errorf("redis db %d: must be 0 or more", c.DB)
	}
	if !c.TLS {
		for _, o := range []struct{ name, value string }{
			{"tls_ca_file", c.TLSCAFile}, {"tls_cert_file", c.TLSCertFile}, {"tls_key_file", c.TLSKeyFile}, {"tls_server_name", c.TLSServerName},
		} {
			if o.value != "" {
				return fmt.Errorf("redis.%s is set but redis.tls is off: set tls: true (HEMICYCLE_REDIS_TLS=true) or remove it", o.name)
			}
		}
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		return errors.New("redis: a client certificate needs both tls_cert_file and tls_key_file")
	}
	if c.DB != 0 && len(c.addrs()) > 1 && c.SentinelMaster == "" {
		return errors.New("redis db: a Redis Cluster (several addresses) has only database 0")
	}
	return nil
}

// NewClient connects to Redis as configured. Timeouts are short on purpose: a node must notice
// an outage within a heartbeat and never hold a request for long waiting on Redis.
func (c RedisConfig) NewClient() (redis.UniversalClient, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	addrs := c.addrs()
	if len(addrs) == 0 {
		return nil, errors.New("no redis address configured")
	}
	opts := &redis.UniversalOptions{
		Addrs:        addrs,
		Username:     c.Username,
		Password:     c.Password,
		DB:           c.DB,
		MasterName:   c.SentinelMaster,
		DialTimeout:  time.Second,
		ReadTimeout:  2 * time.Second,
		WriteTimeout: 2 * time.Second,
		MaxRetries:   1,
		// A caller's deadline shorter than the timeouts above wins.
		ContextTimeoutEnabled: true,
	}
	if c.TLS {
		tc, err := c.tlsConfig()
		if err != nil {
			return nil, err
		}
		opts.TLSConfig = tc
	}
	return redis.NewUniversalClient(opts), nil
}

// tlsConfig reads the CA and the client certificate named in the configuration. An empty
// ServerName lets crypto/tls check each address against its own host, which a Redis Cluster
// or Sentinel setup of several machines needs.
func (c RedisConfig) tlsConfig() (*tls.Config, error) {
	tc := &tls.Config{ServerName: c.TLSServerName, MinVersion: tls.VersionTLS12}
	if c.TLSCAFile != "" {
		pem, err := os.ReadFile(c.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("redis.tls_ca_file: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("redis.tls_ca_file %s: no PEM certificate in it", c.TLSCAFile)
		}
	}
	if c.TLSCertFile != "" {
		pair, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("redis client certificate (tls_cert_file %s, tls_key_file %s): %w", c.TLSCertFile, c.TLSKeyFile, err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return tc, nil
}
