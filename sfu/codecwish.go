package sfu

import (
	"cmp"
	"slices"
	"strings"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// CodecWishes tells, for a track the client is publishing (by the track id its offer gives in
// a=msid, the AddTrackRequest's cid), the codecs it asked to publish it with, best first, as
// MIME types ("video/VP9", case does not matter); nil when it asked for none.
type CodecWishes func(trackID string) []string

// orderAnswerCodecs orders each m-line of the answer: the codecs the client asked for that
// track first, then the offer's own order. A browser sends the first codec of the answer, and
// livekit-client does not reorder its offer: it says in AddTrackRequest which codec it set its
// encoder up for (VP9 with SVC, say) and leaves the choice to the server. An audio m-line
// nobody asked anything for gets RED first when offered, for the loss protection a weak link
// needs; the others keep the offer's order, which pion follows already.
func (t *Transport) orderAnswerCodecs(offer string, wishes CodecWishes) {
	trackOf := offerTrackIDs(offer)
	for _, tr := range t.pc.GetTransceivers() {
		var wish []string
		if id, ok := trackOf[tr.Mid()]; ok && wishes != nil {
			wish = wishes(id)
		}
		if len(wish) == 0 && tr.Kind() == webrtc.RTPCodecTypeAudio {
			wish = []string{mimeRED}
		}
		if len(wish) == 0 || tr.Receiver() == nil {
			continue
		}
		offered := tr.Receiver().GetParameters().Codecs // the offer's order, RTX included
		if err := tr.SetCodecPreferences(wishedFirst(offered, wish)); err != nil {
			t.log.Debug("answer codecs not reordered", "mid", tr.Mid(), "err", err)
		}
	}
}

const mimeRED = "audio/red"

// offerTrackIDs maps each media section's mid to the track id of its a=msid.
func offerTrackIDs(offer string) map[string]string {
	var parsed sdp.SessionDescription
	if err := parsed.UnmarshalString(offer); err != nil {
		return nil // pion accepted the offer; a section it cannot name keeps its order
	}
	ids := make(map[string]string, len(parsed.MediaDescriptions))
	for _, m := range parsed.MediaDescriptions {
		mid, _ := m.Attribute(sdp.AttrKeyMID)
		msid, _ := m.Attribute(sdp.AttrKeyMsid)
		if f := strings.Fields(msid); mid != "" && len(f) == 2 {
			ids[mid] = f[1]
		}
	}
	return ids
}

// wishedFirst puts the wished codecs first, in the wish's order, and keeps the order of the
// others (RTX follows its codec wherever it is: pion pairs them by apt).
func wishedFirst(offered []webrtc.RTPCodecParameters, wish []string) []webrtc.RTPCodecParameters {
	rank := func(c webrtc.RTPCodecParameters) int {
		for i, w := range wish {
			if strings.EqualFold(c.MimeType, w) {
				return i
			}
		}
		return len(wish)
	}
	out := slices.Clone(offered)
	slices.SortStableFunc(out, func(a, b webrtc.RTPCodecParameters) int { return cmp.Compare(rank(a), rank(b)) })
	return out
}
