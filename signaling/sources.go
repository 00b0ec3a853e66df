package signaling

import (
	"github.com/ingeco/hemicycle/broadcast"
	"github.com/ingeco/hemicycle/sfu"
)

// The programme reads the room's published tracks through broadcast.Source.
var _ broadcast.Source = (*sfu.PublishedTrack)(nil)
