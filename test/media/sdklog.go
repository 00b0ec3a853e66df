package media

import (
	protologger "github.com/livekit/protocol/logger"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"go.uber.org/zap"
)

// QuietSDK silences the LiveKit Go SDK used by the synthetic participants of the tests and the
// load generator. It installs a zap logger that drops everything below errors, not the discard
// logger: pion's debug messages are formatted for the discard logger anyway, and one of them
// ("got new track") reads a receiver that the SDK is still configuring, a data race under -race.
func QuietSDK() {
	quiet, err := protologger.FromZapLogger(zap.NewNop(), &protologger.Config{Level: "error"})
	if err == nil {
		lksdk.SetLogger(quiet)
	}
}
