package broadcast

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"
)

// ffmpeg takes a while to start (a second or more on a loaded machine) and drops nothing it
// never received: the packets sent before it binds its ports are lost, and its file begins
// with the first one it gets. The tap therefore holds its packets back until ffmpeg's ports
// are bound, so that the first packet sent is the file's time 0 and the chapters line up.

const (
	// listenPoll is how often the socket tables are read while ffmpeg starts.
	listenPoll = 10 * time.Millisecond
	// listenWait bounds the wait: an ffmpeg that never binds is failing, and sending anyway
	// costs nothing but datagrams nobody reads.
	listenWait = 30 * time.Second
)

// udpTables are the kernel's tables of UDP sockets (Linux); ffmpeg may bind IPv4 or IPv6.
var udpTables = []string{"/proc/net/udp", "/proc/net/udp6"}

// errNoSocketTable means the machine does not show its sockets: nothing can be waited for.
var errNoSocketTable = errors.New("no UDP socket table to read")

// boundUDPPorts returns which of ports some socket on this machine is bound to.
func boundUDPPorts(ports []int) (map[int]bool, error) {
	want := uniq(ports)
	bound := map[int]bool{}
	read := 0
	for _, table := range udpTables {
		f, err := os.Open(table)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", table, err)
		}
		read++
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			// "  12: 0100007F:C350 00000000:0000 07 …": the local address, port in hex.
			fields := strings.Fields(sc.Text())
			if len(fields) < 2 {
				continue
			}
			i := strings.LastIndexByte(fields[1], ':')
			if i < 0 {
				continue // the header line
			}
			port, err := strconv.ParseUint(fields[1][i+1:], 16, 16)
			if err == nil && want[int(port)] {
				bound[int(port)] = true
			}
		}
		err = sc.Err()
		_ = f.Close()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", table, err)
		}
	}
	if read == 0 {
		return nil, errNoSocketTable
	}
	return bound, nil
}

// waitBound returns once every port is bound, ctx ends, or listenWait passes; it says why.
func waitBound(ctx context.Context, ports []int) error {
	deadline := time.Now().Add(listenWait)
	tick := time.NewTicker(listenPoll)
	defer tick.Stop()
	for {
		bound, err := boundUDPPorts(ports)
		if err != nil {
			return err
		}
		if len(bound) == len(uniq(ports)) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ffmpeg bound %d of its %d ports in %s", len(bound), len(ports), listenWait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

func uniq(ports []int) map[int]bool {
	m := make(map[int]bool, len(ports))
	for _, p := range ports {
		m[p] = true
	}
	return m
}
