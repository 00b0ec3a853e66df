package signaling

import (
	"strings"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"

	"github.com/ingeco/hemicycle/broadcast"
)

// TestWebhookEgressInfoOfHLS: an HLS output's update becomes LiveKit's EgressInfo with the
// playlist on disk and where the server serves it (the room's name escaped), the times in
// nanoseconds, and a duration once ended.
func TestWebhookEgressInfoOfHLS(t *testing.T) {
	r := &Room{sid: "RM_test", name: "conseil municipal"}
	start := time.Date(2026, 3, 5, 18, 0, 0, 0, time.UTC)
	u := broadcast.EgressUpdate{ID: "abc", Kind: broadcast.EgressHLS, Status: broadcast.EgressComplete,
		StartedAt: start, EndedAt: start.Add(90 * time.Minute), Target: "/var/lib/hemicycle/hls/conseil_municipal/index.m3u8"}
	info := r.egressInfo(u)
	if info.GetEgressId() != "EG_abc" || info.GetRoomId() != "RM_test" || info.GetRoomName() != "conseil municipal" ||
		info.GetStatus() != livekit.EgressStatus_EGRESS_COMPLETE || info.GetStartedAt() != start.UnixNano() {
		t.Errorf("egress %v", info)
	}
	seg := info.GetSegmentResults()
	if len(seg) != 1 || seg[0].GetPlaylistName() != u.Target || seg[0].GetPlaylistLocation() != "/live/conseil%20municipal/index.m3u8" ||
		seg[0].GetDuration() != int64(90*time.Minute) || seg[0].GetEndedAt() != u.EndedAt.UnixNano() {
		t.Errorf("segments %v", seg)
	}
	if len(info.GetFileResults())+len(info.GetStreamResults()) != 0 {
		t.Errorf("an HLS output with files or streams: %v", info)
	}
	// A restart is told as starting again, with ffmpeg's error.
	u.Status, u.Error, u.Restarts, u.EndedAt = broadcast.EgressRestarting, "ffmpeg exited: exit status 1", 1, time.Time{}
	if info := r.egressInfo(u); info.GetStatus() != livekit.EgressStatus_EGRESS_STARTING || !strings.Contains(info.GetError(), "ffmpeg") ||
		info.GetRetryCount() != 1 || info.GetEndedAt() != 0 {
		t.Errorf("restarting: %v", info)
	}
}
