// Package weaklinks runs Hemicycle over impaired links (issue 20): each test builds the real
// binary, puts a client in a network namespace of its own (test/netlab) and impairs the link.
package weaklinks

import (
	"testing"

	"github.com/ingeco/hemicycle/signaling/signalingtest"
	"github.com/ingeco/hemicycle/test/netlab"
)

func TestMain(m *testing.M) { signalingtest.Main(m) }

// TestNetlabChild is the door through which netlab.Child runs a role inside a namespace.
func TestNetlabChild(t *testing.T) { netlab.Serve(t, roles) }

// roles are the namespace's side of each test.
var roles = map[string]netlab.Role{
	"turn-member":    turnMember,         // turn_test.go
	"subscriber":     downlinkSubscriber, // weaklinks_test.go
	"remb-publisher": rembPublisher,      // remb_test.go
}
