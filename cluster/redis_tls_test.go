package cluster_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ingeco/hemicycle/cluster"
	"github.com/ingeco/hemicycle/store"
	"github.com/ingeco/hemicycle/store/redistest"
)

// Redis's certificate names only this host, so that a client checking the address it dials
// (127.0.0.1) instead of tls_server_name is refused.
const redisTLSName = "redis.conseil.test"

// townCA is a certificate authority of the test's own, as a town runs for its Redis.
type townCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string // the CA certificate, PEM
}

func newTownCA(t *testing.T, dir, name string) *townCA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &townCA{cert: cert, key: key, file: filepath.Join(dir, name+"-ca.pem")}
	writePEM(t, ca.file, "CERTIFICATE", der)
	return ca
}

// issue signs a certificate for a server (dnsName set) or a client; it returns the files of
// the certificate and of its key.
func (ca *townCA) issue(t *testing.T, dir, name, dnsName string) (certFile, keyFile string) {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if dnsName != "" {
		tmpl.DNSNames = []string{dnsName}
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "PRIVATE KEY", keyDER)
	return certFile, keyFile
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// redisTLSConf is the shipped configuration the test's servers run, with this machine's
// paths and ports given on the command line.
const redisTLSConf = "../configs/redis-tls.conf"

// townRedis is a redis-server run from configs/redis-tls.conf (TLS only, client certificates
// required) with a certificate of the town's CA, and a node's configuration and client (the
// constructor serve uses) that reach it.
type townRedis struct {
	dir    string
	cfg    cluster.RedisConfig
	client redis.UniversalClient
}

// startTownRedis starts the server with the test's paths and a free port; users gives the
// settings that make its users (in the test's directory), and username and password are the
// node's. The test's cleanup kills the server and closes the client.
func startTownRedis(t *testing.T, username, password string, users func(dir string) []string) townRedis {
	t.Helper()
	bin := redistest.RedisBinary(t)
	dir := t.TempDir()
	ca := newTownCA(t, dir, "town")
	certFile, keyFile := ca.issue(t, dir, "redis", redisTLSName)
	clientCert, clientKey := ca.issue(t, dir, "node1", "")
	cfg := cluster.RedisConfig{
		Username: username, Password: password,
		TLS: true, TLSCAFile: ca.file, TLSCertFile: clientCert, TLSKeyFile: clientKey, TLSServerName: redisTLSName,
	}
	for range 5 { // the free port may be taken before redis binds it
		port, err := redistest.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		cfg.Address = "127.0.0.1:" + strconv.Itoa(port)
		logFile := filepath.Join(dir, "redis-"+strconv.Itoa(port)+".log")
		cmd := exec.Command(bin, append([]string{redisTLSConf,
			"--tls-port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
			"--tls-cert-file", certFile, "--tls-key-file", keyFile, "--tls-ca-cert-file", ca.file,
			"--daemonize", "no", "--logfile", logFile}, users(dir)...)...)
		if err := cmd.Start(); err != nil {
			t.Fatalf("start redis-server: %v", err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		kill := func() { _ = cmd.Process.Kill(); <-exited }
		deadline := time.Now().Add(20 * time.Second)
		for {
			err := ping(t, cfg)
			if err == nil {
				t.Cleanup(kill)
				client, err := cfg.NewClient()
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { client.Close() })
				return townRedis{dir: dir, cfg: cfg, client: client}
			}
			select {
			case <-exited:
				log, _ := os.ReadFile(logFile)
				t.Logf("redis-server exited: %s", log)
			case <-time.After(20 * time.Millisecond):
				if time.Now().Before(deadline) {
					continue
				}
				kill()
				t.Fatalf("redis-server on %s not ready: %v", cfg.Address, err)
			}
			break // exited: try another port
		}
	}
	t.Fatal("redis-server with TLS did not start")
	return townRedis{}
}

// aclFile writes the users configs/redis-tls.conf documents, with password as the hemicycle
// user's.
func aclFile(t *testing.T, dir, password string) string {
	t.Helper()
	conf, err := os.ReadFile(redisTLSConf)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(password))
	var users []string
	for _, m := range regexp.MustCompile(`(?m)^#\s+(user .*)$`).FindAllStringSubmatch(string(conf), -1) {
		users = append(users, strings.ReplaceAll(m[1], "#<sha256 of the password>", "#"+hex.EncodeToString(sum[:])))
	}
	if len(users) != 2 {
		t.Fatalf("%s documents the users %q, want default and hemicycle", redisTLSConf, users)
	}
	path := filepath.Join(dir, "users.acl")
	if err := os.WriteFile(path, []byte(strings.Join(users, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func ping(t *testing.T, cfg cluster.RedisConfig) error {
	t.Helper()
	c, err := cfg.NewClient()
	if err != nil {
		t.Fatalf("client for %+v: %v", cfg, err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.Ping(ctx).Err()
}

// TestRedisOverTLSWithTheTownsCA: a node's Redis client, built by the constructor serve uses,
// reaches a TLS-only redis-server with its password, the town's CA and its client
// certificate, registers the node, claims a room and appends and reads back a journal
// entry; a wrong password, a server or client certificate of another CA, no client
// certificate, the address's name instead of the certificate's, and plain TCP are refused.
func TestRedisOverTLSWithTheTownsCA(t *testing.T) {
	const password = "node-password-of-the-test"
	rs := startTownRedis(t, "hemicycle", password, func(dir string) []string {
		return []string{"--aclfile", aclFile(t, dir, password)}
	})
	good, client, dir := rs.cfg, rs.client, rs.dir
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	node, err := cluster.New(client, cluster.Config{ID: "node1", URL: "http://node1.test:7880", Prefix: good.Prefix(), Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	nodeCtx, stopNode := context.WithCancel(ctx)
	defer stopNode()
	if err := node.Start(nodeCtx); err != nil {
		t.Fatalf("register the node over TLS: %v", err)
	}
	if nodes, err := node.Nodes(ctx); err != nil || len(nodes) != 1 || nodes[0].ID != "node1" {
		t.Fatalf("nodes over TLS: %+v, %v", nodes, err)
	}
	if local, _ := locate(t, node, "conseil"); !local {
		t.Error("the only node did not get the room")
	}
	journal := store.NewRedis(client, good.Prefix())
	at := time.Date(2026, 12, 7, 18, 30, 0, 0, time.UTC)
	if _, err := journal.Append(ctx, "conseil", 0, at, "sitting.opened", json.RawMessage(`{"by":"chair"}`)); err != nil {
		t.Fatalf("append to the journal over TLS: %v", err)
	}
	entries, err := journal.Read(ctx, "conseil", 0)
	if err != nil || len(entries) != 1 || entries[0].Type != "sitting.opened" || !entries[0].At.Equal(at) {
		t.Fatalf("journal read over TLS: %+v, %v", entries, err)
	}

	other := newTownCA(t, dir, "other")
	otherCert, otherKey := other.issue(t, dir, "intruder", "")
	refused := func(name string, mutate func(*cluster.RedisConfig), want func(error) bool) {
		t.Helper()
		c := good
		mutate(&c)
		err := ping(t, c)
		if err == nil || !want(err) {
			t.Errorf("%s: got %v", name, err)
		}
	}
	contains := func(s string) func(error) bool {
		return func(err error) bool { return strings.Contains(err.Error(), s) }
	}
	refused("wrong password", func(c *cluster.RedisConfig) { c.Password = "guessed" }, contains("WRONGPASS"))
	refused("no password", func(c *cluster.RedisConfig) { c.Username, c.Password = "", "" }, contains("NOAUTH"))
	refused("the default user, off", func(c *cluster.RedisConfig) { c.Username = "" }, contains("WRONGPASS"))
	refused("server certificate of another CA", func(c *cluster.RedisConfig) { c.TLSCAFile = other.file }, func(err error) bool {
		var unknown x509.UnknownAuthorityError
		return errors.As(err, &unknown)
	})
	refused("client certificate of another CA", func(c *cluster.RedisConfig) { c.TLSCertFile, c.TLSKeyFile = otherCert, otherKey }, contains("unknown certificate authority"))
	refused("no client certificate", func(c *cluster.RedisConfig) { c.TLSCertFile, c.TLSKeyFile = "", "" }, contains("certificate required"))
	refused("the address's name instead of the certificate's", func(c *cluster.RedisConfig) { c.TLSServerName = "" }, func(err error) bool {
		var wrongHost x509.HostnameError
		return errors.As(err, &wrongHost)
	})
	refused("plain TCP to the TLS port", func(c *cluster.RedisConfig) {
		c.TLS, c.TLSCAFile, c.TLSCertFile, c.TLSKeyFile, c.TLSServerName = false, "", "", "", ""
	}, func(err error) bool { return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) }) // Redis hangs up
}

// TestRedisOverTLSWithRequirepass: the single-user variant of configs/redis-tls.conf (no ACL
// file, requirepass) admits the node with its password and no username, and refuses a wrong one.
func TestRedisOverTLSWithRequirepass(t *testing.T) {
	const password = "requirepass-of-the-test"
	rs := startTownRedis(t, "", password, func(string) []string {
		return []string{"--aclfile", "", "--requirepass", password}
	})
	good := rs.cfg
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	journal := store.NewRedis(rs.client, good.Prefix())
	if _, err := journal.Append(ctx, "conseil", 0, time.Now(), "sitting.opened", json.RawMessage(`{}`)); err != nil {
		t.Fatalf("append with requirepass: %v", err)
	}
	wrong := good
	wrong.Password = "guessed"
	if err := ping(t, wrong); err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
		t.Errorf("wrong requirepass: got %v", err)
	}
}

// TestRedisTLSConfigurationRefused: TLS options without tls, half a client certificate, a
// missing or empty CA file and a missing key are refused, naming the setting or the file.
func TestRedisTLSConfigurationRefused(t *testing.T) {
	dir := t.TempDir()
	ca := newTownCA(t, dir, "town")
	cert, _ := ca.issue(t, dir, "node1", "")
	notPEM := filepath.Join(dir, "not-a-ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing-ca.pem")
	base := cluster.RedisConfig{Address: "127.0.0.1:6380", TLS: true}
	for _, tc := range []struct {
		name   string
		mutate func(*cluster.RedisConfig)
		want   string
	}{
		{"ca without tls", func(c *cluster.RedisConfig) { c.TLS, c.TLSCAFile = false, ca.file }, "redis.tls_ca_file is set but redis.tls is off"},
		{"server name without tls", func(c *cluster.RedisConfig) { c.TLS, c.TLSServerName = false, redisTLSName }, "redis.tls_server_name is set but redis.tls is off"},
		{"certificate without key", func(c *cluster.RedisConfig) { c.TLSCertFile = cert }, "both tls_cert_file and tls_key_file"},
		{"missing CA file", func(c *cluster.RedisConfig) { c.TLSCAFile = missing }, missing},
		{"CA file without a certificate", func(c *cluster.RedisConfig) { c.TLSCAFile = notPEM }, notPEM + ": no PEM certificate"},
		{"missing key file", func(c *cluster.RedisConfig) { c.TLSCertFile, c.TLSKeyFile = cert, filepath.Join(dir, "gone-key.pem") }, "gone-key.pem"},
	} {
		c := base
		tc.mutate(&c)
		client, err := c.NewClient()
		if err == nil {
			client.Close()
			t.Errorf("%s: accepted", tc.name)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want it to say %q", tc.name, err, tc.want)
		}
	}
	if err := base.Validate(); err != nil {
		t.Errorf("tls alone, system roots: %v", err)
	}
}
