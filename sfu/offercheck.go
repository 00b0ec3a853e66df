package sfu

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/pion/ice/v4"
	"github.com/pion/sdp/v3"
)

// checkOffer refuses the faults of an offer that pion finds only after it has taken the
// offer as pending (signalling state have-remote-offer): its SetRemoteDescription cannot be
// rolled back, so after such a refusal every later offer of that client was refused too
// ("invalid proposed signaling state transition") and the participant could not publish
// until it joined again. An offer that does not parse is left to pion, which refuses it
// before changing anything.
func checkOffer(offer string) error {
	var d sdp.SessionDescription
	if d.UnmarshalString(offer) != nil {
		return nil
	}
	for i, m := range d.MediaDescriptions {
		if mid, _ := m.Attribute(sdp.AttrKeyMID); mid == "" {
			return fmt.Errorf("m-line %d (%s) has no a=mid", i, m.MediaName.Media)
		}
		if err := checkCodecs(&d, m); err != nil {
			return fmt.Errorf("m-line %d (%s): %w", i, m.MediaName.Media, err)
		}
		for _, a := range m.Attributes {
			if a.Key != sdp.AttrKeyExtMap {
				continue
			}
			var e sdp.ExtMap
			if err := e.Unmarshal(a.String()); err != nil {
				return fmt.Errorf("m-line %d (%s): a=extmap %q: %w", i, m.MediaName.Media, a.Value, err)
			}
		}
	}
	ufrag, _ := d.Attribute("ice-ufrag")
	pwd, _ := d.Attribute("ice-pwd")
	if m := iceSection(&d); m != nil {
		if ufrag == "" {
			ufrag, _ = m.Attribute("ice-ufrag")
			pwd, _ = m.Attribute("ice-pwd")
		}
		if err := checkCandidates(m); err != nil {
			return err
		}
	}
	if ufrag == "" || pwd == "" {
		return errors.New("the offer has no ICE username fragment and password (a=ice-ufrag, a=ice-pwd)")
	}
	if f := fingerprint(&d); len(strings.Split(f, " ")) != 2 {
		return fmt.Errorf("the offer has no DTLS fingerprint of the form \"sha-256 AB:CD:...\" (a=fingerprint:%s)", f)
	}
	return nil
}

// checkCandidates refuses the candidates of the m-line pion takes them from when none of
// them reads, as pion does.
func checkCandidates(m *sdp.MediaDescription) error {
	var last error
	for _, a := range m.Attributes {
		if !a.IsICECandidate() {
			continue
		}
		_, err := ice.UnmarshalCandidate(a.Value)
		if err == nil {
			return nil
		}
		if !errors.Is(err, ice.ErrUnknownCandidateTyp) && !errors.Is(err, ice.ErrDetermineNetworkType) {
			last = fmt.Errorf("a=candidate:%s: %w", a.Value, err)
		}
	}
	return last
}

// fingerprint is the DTLS fingerprint pion takes: the session's, or the BUNDLE group's first
// m-line's, or (without BUNDLE) the first one an m-line gives.
func fingerprint(d *sdp.SessionDescription) string {
	if f, _ := d.Attribute("fingerprint"); f != "" {
		return f
	}
	if bundleTag(d) != "" {
		if m := iceSection(d); m != nil {
			f, _ := m.Attribute("fingerprint")
			return f
		}
		return ""
	}
	for _, m := range d.MediaDescriptions {
		if f, _ := m.Attribute("fingerprint"); f != "" {
			return f
		}
	}
	return ""
}

// checkCodecs wants each payload type of an audio or video m-line to be a number with its
// codec known (an a=rtpmap, or a static payload type).
func checkCodecs(d *sdp.SessionDescription, m *sdp.MediaDescription) error {
	if !strings.EqualFold(m.MediaName.Media, "audio") && !strings.EqualFold(m.MediaName.Media, "video") {
		return nil
	}
	one := &sdp.SessionDescription{MediaDescriptions: []*sdp.MediaDescription{m}}
	codecs := one.GetCodecMap()
	for _, f := range m.MediaName.Formats {
		pt, err := strconv.ParseUint(f, 10, 8)
		if err != nil {
			return fmt.Errorf("payload type %q is not a number from 0 to 255", f)
		}
		if _, ok := codecs[uint8(pt)]; !ok && pt != 0 {
			return fmt.Errorf("payload type %d has no codec", pt)
		}
	}
	return nil
}

// iceSection is the m-line whose ICE credentials pion uses: the first of the BUNDLE group,
// or the first m-line.
func iceSection(d *sdp.SessionDescription) *sdp.MediaDescription {
	bundle := bundleTag(d)
	for _, m := range d.MediaDescriptions {
		if bundle == "" {
			return m
		}
		if mid, _ := m.Attribute(sdp.AttrKeyMID); mid == bundle {
			return m
		}
	}
	return nil
}

// bundleTag is the first mid of the offer's BUNDLE group, "" without one.
func bundleTag(d *sdp.SessionDescription) string {
	group, _ := d.Attribute(sdp.AttrKeyGroup)
	if f := strings.Split(group, " "); strings.Contains(group, "BUNDLE") && len(f) > 1 {
		return f[1]
	}
	return ""
}
