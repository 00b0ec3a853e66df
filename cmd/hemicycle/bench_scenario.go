package main

import "fmt"

const (
	scenarioAudioFanout = "audio-fanout"
	scenarioCouncil     = "council"
	scenarioJoinStorm   = "join-storm"
)

// Identities the scenarios give their bots. The floor holder is always councillor 1.
const (
	publisherIdentity   = "publisher"
	floorHolderIdentity = "councillor-001"
)

// botSpec says what one synthetic participant does.
type botSpec struct {
	identity string
	audio    bool // publishes the Opus tone
	video    bool // publishes the VP8 pattern
	// autoSubscribe receives every track in the room (councillors). Otherwise the bot subscribes
	// itself, with UpdateSubscription, to the kinds listed in subscribeKinds of the tracks of
	// subscribeTo only, as a viewer or listener would.
	autoSubscribe  bool
	subscribeTo    string
	subscribeKinds []string // "audio", "video"
	// timed bots join after their publishers are sending: their join time (WebSocket open to
	// first media packet) is meaningful. A councillor joining an empty room is not timed.
	timed bool
}

func (s botSpec) wants(identity, kind string) bool {
	if s.autoSubscribe || identity != s.subscribeTo {
		return false
	}
	for _, k := range s.subscribeKinds {
		if k == kind {
			return true
		}
	}
	return false
}

// scenarioPlan is a scenario's participants in the order they join.
type scenarioPlan struct {
	// senders join first, one after the other at the join rate, and start their media.
	senders []botSpec
	// receivers then join at the join rate: the "join phase" whose server CPU is reported.
	receivers []botSpec
	// expectedStreams is how many (receiver, track) pairs should carry media.
	expectedStreams int
}

func (p scenarioPlan) participants() int { return len(p.senders) + len(p.receivers) }

func planScenario(cfg benchConfig) (scenarioPlan, error) {
	var p scenarioPlan
	audioOnly := []string{"audio"}
	switch cfg.Scenario {
	case scenarioAudioFanout, scenarioJoinStorm:
		n, prefix := cfg.Listeners, "listener"
		if cfg.Scenario == scenarioJoinStorm {
			n, prefix = cfg.Joins, "joiner"
		}
		p.senders = []botSpec{{identity: publisherIdentity, audio: true}}
		for i := 1; i <= n; i++ {
			p.receivers = append(p.receivers, botSpec{
				identity: fmt.Sprintf("%s-%04d", prefix, i), subscribeTo: publisherIdentity,
				subscribeKinds: audioOnly, timed: true,
			})
		}
		p.expectedStreams = n
	case scenarioCouncil:
		for i := 1; i <= cfg.Councillors; i++ {
			p.senders = append(p.senders, botSpec{
				identity: fmt.Sprintf("councillor-%03d", i), audio: true, video: true, autoSubscribe: true,
			})
		}
		for i := 1; i <= cfg.Viewers; i++ {
			p.receivers = append(p.receivers, botSpec{
				identity: fmt.Sprintf("viewer-%04d", i), subscribeTo: floorHolderIdentity,
				subscribeKinds: []string{"audio", "video"}, timed: true,
			})
		}
		// Each councillor receives the audio and video of every other one.
		p.expectedStreams = cfg.Councillors*(cfg.Councillors-1)*2 + cfg.Viewers*2
	default:
		return p, fmt.Errorf("unknown scenario %q", cfg.Scenario)
	}
	return p, nil
}
