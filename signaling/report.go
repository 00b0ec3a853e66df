package signaling

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/livekit/protocol/livekit"

	"github.com/ingeco/hemicycle/auth"
	"github.com/ingeco/hemicycle/council"
	"github.com/ingeco/hemicycle/signaling/httpapi"
	"github.com/ingeco/hemicycle/store"
)

// The report of a room (a sitting, or a meeting without one): who took part, how long, by
// role and by place, the bytes each participant sent and received by kind of media, the
// public viewers, the recording's size, the server's CPU time, and an energy and CO2e estimate
// from the factors of docs/sobriety.md. It is counted as the room lives: the live tracks and
// subscriptions are read when the report is asked for; those that end, and the participants
// who leave, are folded into the room's usage as they go, so that nothing they counted is lost.
// When the room closes its usage is kept as a store record beside the journal (added to what
// an earlier opening of the same room kept), and the report is served from it afterwards.

// kindReport is the store kind of the rooms' kept usage, by room name.
const kindReport = "report"

// dataCounters count a participant's data packets: received from its client, sent to it.
type dataCounters struct{ up, down atomic.Uint64 }

// sendData sends a data packet to the participant's client and counts it.
func (p *Participant) sendData(reliable bool, data []byte) error {
	if err := p.publisher.SendData(reliable, data); err != nil {
		return err
	}
	p.data.down.Add(uint64(len(data)))
	return nil
}

// Bytes are RTP bytes (header and payload, as the SFU reads and writes them; no SRTP tag,
// UDP, IP or ICE overhead) and data packet bytes, by kind.
type Bytes struct {
	Audio  uint64 `json:"audio"`
	Video  uint64 `json:"video"`
	Screen uint64 `json:"screenShare"`
	Data   uint64 `json:"data"`
	Total  uint64 `json:"total"`
}

func (b *Bytes) add(o Bytes) {
	b.Audio += o.Audio
	b.Video += o.Video
	b.Screen += o.Screen
	b.Data += o.Data
	b.Total += o.Total
}

// addMedia counts n bytes of a track described by info.
func (b *Bytes) addMedia(info *livekit.TrackInfo, n uint64) {
	switch src := sourceOf(info); {
	case src == livekit.TrackSource_SCREEN_SHARE || src == livekit.TrackSource_SCREEN_SHARE_AUDIO:
		b.Screen += n
	case info.GetType() == livekit.TrackType_AUDIO:
		b.Audio += n
	default:
		b.Video += n
	}
	b.Total += n
}

func (b *Bytes) addData(n uint64) {
	b.Data += n
	b.Total += n
}

// personUsage is what one identity counted in a room, every session together.
type personUsage struct {
	Identity string  `json:"identity"`
	Name     string  `json:"name,omitempty"`
	Role     string  `json:"role"`
	Seat     int     `json:"seat,omitempty"`
	Sessions int     `json:"sessions"`
	Seconds  float64 `json:"seconds"`
	Up       Bytes   `json:"up"`
	Down     Bytes   `json:"down"`
}

// usageRecord is a room's usage as it is kept: additive, so that a room opened again (after
// it emptied, or on another node after a failover) adds to it.
type usageRecord struct {
	Room       string                  `json:"room"`
	From       time.Time               `json:"from"`
	To         time.Time               `json:"to"`
	Seconds    float64                 `json:"seconds"` // the room open, every opening together
	CPUSeconds float64                 `json:"cpuSeconds"`
	People     map[string]*personUsage `json:"people"`
	Recording  map[string]int64        `json:"recording,omitempty"` // file -> bytes
}

func (u *usageRecord) person(p *Participant) *personUsage {
	if u.People == nil {
		u.People = map[string]*personUsage{}
	}
	pu := u.People[p.identity]
	if pu == nil {
		pu = &personUsage{Identity: p.identity}
		u.People[p.identity] = pu
	}
	pu.Name, pu.Role = p.name, roleName(p.claims.Role())
	if p.claims.Council != nil {
		pu.Seat = p.claims.Council.Seat
	}
	return pu
}

// add folds o (a later or an earlier opening of the same room) into u.
func (u *usageRecord) add(o *usageRecord) {
	if u.From.IsZero() || (!o.From.IsZero() && o.From.Before(u.From)) {
		u.From = o.From
	}
	if o.To.After(u.To) {
		u.To = o.To
	}
	u.Seconds += o.Seconds
	u.CPUSeconds += o.CPUSeconds
	for id, op := range o.People {
		if u.People == nil {
			u.People = map[string]*personUsage{}
		}
		up := u.People[id]
		if up == nil {
			c := *op
			u.People[id] = &c
			continue
		}
		up.Sessions += op.Sessions
		up.Seconds += op.Seconds
		up.Up.add(op.Up)
		up.Down.add(op.Down)
		if op.Role != "" {
			up.Name, up.Role, up.Seat = op.Name, op.Role, op.Seat
		}
	}
	for f, n := range o.Recording {
		if u.Recording == nil {
			u.Recording = map[string]int64{}
		}
		u.Recording[f] = max(u.Recording[f], n)
	}
}

func (u *usageRecord) clone() *usageRecord {
	c := &usageRecord{}
	c.add(u)
	c.Room = u.Room
	return c
}

// roomUsage is the usage of one opening of a room: what left counted, and where it started.
type roomUsage struct {
	opened   time.Time
	cpuStart time.Duration
	folded   usageRecord // room mutex
}

func newRoomUsage() *roomUsage {
	return &roomUsage{opened: time.Now(), cpuStart: processCPU()}
}

func roleName(r auth.Role) string {
	if r == "" {
		return "none"
	}
	return string(r)
}

// foldTrackLocked adds a published track's bytes to its owner's, once: when its media ended,
// or its owner left.
func (r *Room) foldTrackLocked(t *publishedTrack) {
	if t.counted {
		return
	}
	t.counted = true
	_, n := t.media.Stats()
	r.usage.folded.person(t.owner).Up.addMedia(t.info, n)
}

// foldSubscriptionLocked adds the bytes a subscription sent to its subscriber's, once.
func (r *Room) foldSubscriptionLocked(sub *Participant, s *subscription) {
	if s.counted {
		return
	}
	s.counted = true
	_, n := s.down.Stats()
	r.usage.folded.person(sub).Down.addMedia(s.track.info, n)
}

// foldParticipantLocked folds what a leaving participant counted: its tracks, its
// subscriptions, its data and the time it was there (until its connection dropped, if it did).
func (r *Room) foldParticipantLocked(p *Participant) {
	for _, t := range p.tracks {
		r.foldTrackLocked(t)
	}
	for _, s := range p.subs {
		r.foldSubscriptionLocked(p, s)
	}
	pu := r.usage.folded.person(p)
	pu.Up.addData(p.data.up.Swap(0))
	pu.Down.addData(p.data.down.Swap(0))
	end := time.Now()
	if !p.droppedAt.IsZero() {
		end = p.droppedAt
	}
	pu.Sessions++
	pu.Seconds += end.Sub(p.joinedAt).Seconds()
}

// usageNow is this opening's usage: what was folded plus the participants here now.
func (r *Room) usageNow() *usageRecord {
	now := time.Now()
	r.mu.Lock()
	u := r.usage.folded.clone()
	for _, p := range r.participants {
		pu := u.person(p)
		for _, t := range p.tracks {
			if !t.counted {
				_, n := t.media.Stats()
				pu.Up.addMedia(t.info, n)
			}
		}
		for _, s := range p.subs {
			if !s.counted {
				_, n := s.down.Stats()
				pu.Down.addMedia(s.track.info, n)
			}
		}
		pu.Up.addData(p.data.up.Load())
		pu.Down.addData(p.data.down.Load())
		pu.Sessions++
		pu.Seconds += now.Sub(p.joinedAt).Seconds()
	}
	var recording []string
	if r.programme != nil && r.programme.rec != nil {
		recording = r.programme.rec.Files()
	}
	r.mu.Unlock()
	u.Room = r.name
	u.From, u.To = r.usage.opened, now
	u.Seconds = now.Sub(r.usage.opened).Seconds()
	u.CPUSeconds = (processCPU() - r.usage.cpuStart).Seconds()
	for _, f := range recording {
		if u.Recording == nil {
			u.Recording = map[string]int64{}
		}
		if st, err := os.Stat(f); err == nil {
			u.Recording[f] = st.Size()
		}
	}
	return u
}

// keepReport adds this opening's usage to the room's kept record, when the server has records.
func (r *Room) keepReport() {
	recs := r.srv.cfg.Records
	if recs == nil {
		return
	}
	u := r.usageNow()
	if len(u.People) == 0 && len(u.Recording) == 0 {
		return // nobody came: nothing to report
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for attempt := 0; attempt < 3; attempt++ {
		kept, version, err := keptUsage(ctx, recs, r.name)
		if err != nil {
			r.log.Error("the room's report is not kept", "err", err)
			return
		}
		total := u
		if kept != nil {
			kept.add(u)
			total = kept
		}
		total.Room = r.name
		data, err := json.Marshal(total)
		if err == nil {
			_, err = recs.Put(ctx, kindReport, r.name, version, data)
		}
		if errors.Is(err, store.ErrConflict) {
			continue // another node kept its part first: add to theirs
		}
		if err != nil {
			r.log.Error("the room's report is not kept", "err", err)
		}
		return
	}
}

// keptUsage reads the room's kept usage and its version; nil and 0 when none is kept.
func keptUsage(ctx context.Context, recs store.Records, room string) (*usageRecord, uint64, error) {
	rec, err := recs.Get(ctx, kindReport, room)
	if errors.Is(err, store.ErrNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read the kept report of room %q: %w", room, err)
	}
	u := &usageRecord{}
	if err := json.Unmarshal(rec.Data, u); err != nil {
		return nil, 0, fmt.Errorf("the kept report of room %q is not valid: %w", room, err)
	}
	return u, rec.Version, nil
}

// SobrietyConfig holds the factors of the energy and CO2e estimate (docs/sobriety.md). A zero
// factor takes the default, whose source the report names.
type SobrietyConfig struct {
	// NetworkKWhPerGB is the electricity the networks use per gigabyte carried.
	NetworkKWhPerGB float64
	// ServerWattsPerCPU is the server's power per CPU kept busy (a CPU-second is that many joules).
	ServerWattsPerCPU float64
	// GridGCO2ePerKWh is the carbon intensity of the grid's electricity, and Grid names it.
	GridGCO2ePerKWh float64
	Grid            string
}

// Factor is one factor of the estimate, with where its value comes from.
type Factor struct {
	Name   string  `json:"name"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit"`
	Source string  `json:"source"`
	Date   string  `json:"date"`
}

// factors are the configured factors, each its default when not set.
func (c SobrietyConfig) factors() (network, server, grid Factor) {
	network = Factor{Name: "network electricity per GB carried", Value: 0.06, Unit: "kWh/GB",
		Source: "Aslan, Mayers, Koomey, France, Electricity Intensity of Internet Data Transmission, Journal of Industrial Ecology (core and fixed-line access networks, 2015; the paper finds it halving about every two years): https://www.networkdee.org/library/electricity-intensity-of-internet-data-transmission-untangling-the-estimates/ZKU4ZVZA",
		Date:   "2015"}
	server = Factor{Name: "server power per busy CPU", Value: 3.5, Unit: "W",
		Source: "Cloud Carbon Footprint methodology, AWS average maximum watts per vCPU (SPECpower): https://www.cloudcarbonfootprint.org/docs/methodology/",
		Date:   "read 2026-12-07"}
	grid = Factor{Name: "grid carbon intensity (France)", Value: 21.3, Unit: "gCO2e/kWh",
		Source: "RTE, production in mainland France in 2024 (direct emissions, not life cycle), as reported on https://news.dayfr.com/local/4263100.html",
		Date:   "2024 (published 2025-01-20)"}
	set := func(f *Factor, v float64, key string) {
		if v > 0 {
			f.Value, f.Source, f.Date = v, "set in the configuration (sobriety."+key+")", ""
		}
	}
	set(&network, c.NetworkKWhPerGB, "network_kwh_per_gb")
	set(&server, c.ServerWattsPerCPU, "server_watts_per_cpu")
	set(&grid, c.GridGCO2ePerKWh, "grid_gco2e_per_kwh")
	if c.Grid != "" {
		grid.Name = "grid carbon intensity (" + c.Grid + ")"
	}
	return network, server, grid
}

// Report is a room's report, as GET /api/rooms/{room}/report answers it.
type Report struct {
	Room string `json:"room"`
	// Open says whether the room is open now (the report is then counted up to now).
	Open    bool      `json:"open"`
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	Seconds float64   `json:"seconds"`

	Participants []ParticipantReport    `json:"participants"`
	ByRole       map[string]*RoleReport `json:"byRole"`
	// ByPlace is the sitting's attendance by place (chamber, remote), from its journal; absent
	// without a sitting.
	ByPlace map[council.Place]*PlaceReport `json:"byPlace,omitempty"`
	Viewers ViewerReport                   `json:"viewers"`
	Totals  struct {
		Up   Bytes `json:"up"`
		Down Bytes `json:"down"`
		// Bytes is up and down together: what the networks carried to and from the server.
		Bytes uint64 `json:"bytes"`
	} `json:"totals"`
	Recording struct {
		Files []RecordingFile `json:"files"`
		Bytes int64           `json:"bytes"`
	} `json:"recording"`
	Server struct {
		CPUSeconds float64 `json:"cpuSeconds"`
		Note       string  `json:"note"`
	} `json:"server"`
	Estimate Estimate `json:"estimate"`
	// NotCounted says what the report leaves out.
	NotCounted []string `json:"notCounted"`
}

// ParticipantReport is one participant (an identity, every session together); viewers are
// counted together in Viewers instead.
type ParticipantReport struct {
	personUsage
	// Place is where the seat attends from in the sitting's attendance (chamber, remote), when
	// there is a sitting and the participant has a seat in it.
	Place council.Place `json:"place,omitempty"`
}

// RoleReport counts the participants of a role and the time they were there.
type RoleReport struct {
	Participants int     `json:"participants"`
	Seconds      float64 `json:"seconds"`
}

// PlaceReport counts the seats that attended from a place and for how long.
type PlaceReport struct {
	Seats   int     `json:"seats"`
	Seconds float64 `json:"seconds"`
}

// ViewerReport counts the public's WebRTC viewers (the viewer role) and what they received.
type ViewerReport struct {
	Participants int     `json:"participants"`
	Seconds      float64 `json:"seconds"`
	Down         Bytes   `json:"down"`
}

// RecordingFile is one file of the room's recording.
type RecordingFile struct {
	File  string `json:"file"`
	Bytes int64  `json:"bytes"`
}

// Estimate is the energy and CO2e of the network traffic and the server's CPU time.
type Estimate struct {
	NetworkKWh float64  `json:"networkKWh"`
	ServerKWh  float64  `json:"serverKWh"`
	KWh        float64  `json:"kWh"`
	GCO2e      float64  `json:"gCO2e"`
	Factors    []Factor `json:"factors"`
}

// render makes the report of a room's usage; attendance is the sitting's, nil without one.
func (c SobrietyConfig) render(u *usageRecord, open bool, attendance []council.Attendance, sittingEnd time.Time) *Report {
	rep := &Report{Room: u.Room, Open: open, From: u.From, To: u.To, Seconds: u.Seconds, ByRole: map[string]*RoleReport{}}
	rep.Recording.Files = []RecordingFile{}
	places := map[int]council.Place{}
	if attendance != nil {
		rep.ByPlace = map[council.Place]*PlaceReport{council.InChamber: {}, council.Remote: {}}
		for _, a := range attendance {
			seen := map[council.Place]bool{}
			for _, p := range a.Periods {
				to := p.To
				if to.IsZero() {
					to = sittingEnd
				}
				pr := rep.ByPlace[p.Place]
				if pr == nil || to.Before(p.From) {
					continue
				}
				pr.Seconds += to.Sub(p.From).Seconds()
				if !seen[p.Place] {
					seen[p.Place] = true
					pr.Seats++
				}
				places[a.Seat] = p.Place // the last period's place
			}
		}
	}
	for _, id := range slices.Sorted(maps.Keys(u.People)) {
		pu := u.People[id]
		rep.Totals.Up.add(pu.Up)
		rep.Totals.Down.add(pu.Down)
		if pu.Role == string(auth.RoleViewer) {
			rep.Viewers.Participants++
			rep.Viewers.Seconds += pu.Seconds
			rep.Viewers.Down.add(pu.Down)
			continue
		}
		pr := ParticipantReport{personUsage: *pu}
		if pu.Seat != 0 && pu.Role != string(auth.RoleViewer) {
			pr.Place = places[pu.Seat]
		}
		rep.Participants = append(rep.Participants, pr)
		rr := rep.ByRole[pu.Role]
		if rr == nil {
			rr = &RoleReport{}
			rep.ByRole[pu.Role] = rr
		}
		rr.Participants++
		rr.Seconds += pu.Seconds
	}
	rep.Totals.Bytes = rep.Totals.Up.Total + rep.Totals.Down.Total
	for _, f := range slices.Sorted(maps.Keys(u.Recording)) {
		rep.Recording.Files = append(rep.Recording.Files, RecordingFile{File: f, Bytes: u.Recording[f]})
		rep.Recording.Bytes += u.Recording[f]
	}
	rep.Server.CPUSeconds = u.CPUSeconds
	rep.Server.Note = "CPU time of the whole server process while the room was open: shared by every room open on the node at the time, not this room's alone"
	network, server, grid := c.factors()
	e := &rep.Estimate
	e.NetworkKWh = float64(rep.Totals.Bytes) / 1e9 * network.Value
	e.ServerKWh = u.CPUSeconds * server.Value / 3.6e6
	e.KWh = e.NetworkKWh + e.ServerKWh
	e.GCO2e = e.KWh * grid.Value
	e.Factors = []Factor{network, server, grid}
	rep.NotCounted = []string{
		"HLS viewers and RTMP pushes of the public programme",
		"what the defaults saved against every camera at full quality (not computed yet)",
		"SRTP, UDP, IP and ICE overhead (some 40 bytes a packet), RTCP, signalling",
		"the participants' devices and the recording's storage",
	}
	return rep
}

// serveReport answers a room's report: counted up to now while the room is open here, else
// the one kept when it closed.
func (s *Server) serveReport(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("room")
	format := r.URL.Query().Get("format")
	if format != "" && format != "json" && format != "csv" {
		httpapi.WriteError(w, http.StatusBadRequest, fmt.Sprintf("format %q is not offered: ask for json (the default) or csv", format))
		return
	}
	var kept *usageRecord
	if recs := s.cfg.Records; recs != nil {
		var err error
		if kept, _, err = keptUsage(r.Context(), recs, name); err != nil {
			httpapi.WriteError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
	}
	room, open := s.Room(name)
	u := kept
	if open {
		u = room.usageNow()
		if kept != nil {
			kept.add(u)
			u = kept
		}
	}
	if u == nil {
		why := "room %q is not open on this node and no report of it is kept"
		if s.cfg.Records == nil {
			why += " (the server has no records store to keep reports in)"
		}
		httpapi.WriteError(w, http.StatusNotFound, fmt.Sprintf(why, name))
		return
	}
	u.Room = name
	attendance, end := s.sittingAttendance(r.Context(), name, u.To)
	rep := s.cfg.Sobriety.render(u, open, attendance, end)
	if format != "csv" {
		httpapi.WriteJSON(w, http.StatusOK, rep)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name + "-report.csv"}))
	if err := rep.writeCSV(w); err != nil {
		s.log.Warn("report CSV not sent", "room", name, "err", err)
	}
}

// sittingAttendance is the attendance of the room's sitting and when the sitting ended (or
// until, while it goes on); nil without a sitting.
func (s *Server) sittingAttendance(ctx context.Context, room string, until time.Time) ([]council.Attendance, time.Time) {
	if s.delib == nil {
		return nil, until
	}
	dk, err := s.delib.desk(ctx, room)
	if err != nil {
		s.log.Warn("report without attendance", "room", room, "err", err)
		return nil, until
	}
	dk.mu.Lock()
	defer dk.mu.Unlock()
	if dk.state == nil {
		return nil, until
	}
	if closed := dk.state.Session().ClosedAt; !closed.IsZero() {
		until = closed
	}
	return dk.state.AttendanceAll(), until
}

// writeCSV writes the report as one table: a row per participant, then the viewers together,
// then the totals, with the room's figures and the estimate in rows of their own after them.
func (rep *Report) writeCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	u := func(n uint64) string { return strconv.FormatUint(n, 10) }
	f := func(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }
	row := func(kind, identity, name, role, seat, place, sessions string, seconds float64, up, down Bytes) {
		_ = cw.Write([]string{kind, identity, name, role, seat, place, sessions, f(seconds),
			u(up.Audio), u(up.Video), u(up.Screen), u(up.Data), u(up.Total),
			u(down.Audio), u(down.Video), u(down.Screen), u(down.Data), u(down.Total)})
	}
	_ = cw.Write([]string{"row", "identity", "name", "role", "seat", "place", "sessions", "seconds",
		"up_audio", "up_video", "up_screen_share", "up_data", "up_total",
		"down_audio", "down_video", "down_screen_share", "down_data", "down_total"})
	for _, p := range rep.Participants {
		seat := ""
		if p.Seat != 0 {
			seat = strconv.Itoa(p.Seat)
		}
		row("participant", p.Identity, p.Name, p.Role, seat, string(p.Place), strconv.Itoa(p.Sessions), p.Seconds, p.Up, p.Down)
	}
	row("viewers", "", "", string(auth.RoleViewer), "", "", strconv.Itoa(rep.Viewers.Participants), rep.Viewers.Seconds, Bytes{}, rep.Viewers.Down)
	row("total", "", "", "", "", "", "", rep.Seconds, rep.Totals.Up, rep.Totals.Down)
	_ = cw.Write(nil)
	_ = cw.Write([]string{"figure", "value", "unit", "source", "date"})
	_ = cw.Write([]string{"bytes carried", u(rep.Totals.Bytes), "B", "", ""})
	_ = cw.Write([]string{"recording", strconv.FormatInt(rep.Recording.Bytes, 10), "B", "", ""})
	_ = cw.Write([]string{"server CPU", f(rep.Server.CPUSeconds), "s", rep.Server.Note, ""})
	for _, fa := range rep.Estimate.Factors {
		_ = cw.Write([]string{fa.Name, f(fa.Value), fa.Unit, fa.Source, fa.Date})
	}
	_ = cw.Write([]string{"energy", f(rep.Estimate.KWh), "kWh", "", ""})
	_ = cw.Write([]string{"emissions", f(rep.Estimate.GCO2e), "gCO2e", "", ""})
	cw.Flush()
	return cw.Error()
}
