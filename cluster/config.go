package cluster

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
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
		host, _, _ := net.SplitHostPort(addrs[0])
		opts.TLSConfig = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	}
	return redis.NewUniversalClient(opts), nil
}
