// Package weaklinks runs Hemicycle over impaired links (issue 20): each test builds the real
// binary, puts a client in a network namespace of its own (test/netlab) and impairs the link.
package weaklinks

import (
	"os"
	"testing"

	"github.com/ingeco/hemicycle/test/media"
	"github.com/ingeco/hemicycle/test/netlab"
)

func TestMain(m *testing.M) {
	if os.Getenv("HEMICYCLE_TEST_LOG") == "" {
		media.QuietSDK()
	}
	os.Exit(m.Run())
}

// TestNetlabChild is the door through which netlab.Child runs a role inside a namespace.
func TestNetlabChild(t *testing.T) { netlab.Serve(t, roles) }

// roles are the namespace's side of each test.
var roles = map[string]netlab.Role{
	"turn-member": turnMember,         // turn_test.go
	"subscriber":  downlinkSubscriber, // weaklinks_test.go
}
