// Package council holds the rules of deliberation: the body and its roster,
// attendance, quorum, proxies, the floor, agenda items, votes and the draft
// minutes. It is pure: no clock, disk, network, goroutine or log. Every time
// comes in with the command or event that carries it, and every rule that
// differs between bodies comes from a legal Profile.
//
// # What a caller does, in order
//
//  1. Load the legal profile: ParseProfile(yamlBytes). The shipped profiles
//     (fr-commune, fr-epci-visio, fr-2020-emergency, generic) are embedded
//     in package github.com/ingeco/hemicycle/configs/profiles:
//     profiles.Read("fr-commune").
//  2. Load the roster from the clerk's CSV file: ParseRoster(r). Errors name
//     the line and column ("line 7: seat \"12\" appears twice (first on line 3)").
//  3. Build the state: NewState(profile, roster) for a new session, or
//     Replay(profile, roster, events) to rebuild it from a journal. The
//     roster may be left empty on replay: SessionOpened carries the roster in
//     force, and a roster given must match it.
//  4. For each request (API call, roll-call click, lost connection after the
//     grace period), build a Command with Header{At: now, By: actor} and call
//     state.Decide(cmd). It returns the events to record, or a refusal: a
//     *RuleError (or *QuorumError) whose Kind is one of the Err* values
//     (errors.Is) and whose message gives the figures, e.g.
//     "seat 12 already holds a proxy (profile fr-commune allows 1)" or
//     `vote "3-1" cannot open: quorum not reached: 16 present, 17 required of 33 in office`.
//     Fill the Header from the verified token and the server's clock, never
//     from a request body: commands carry JSON tags only so that an API can
//     decode their other fields.
//  5. Store each event (EncodeEvent gives the type tag and JSON for the
//     journal), then fold it with state.Apply(event). Execute does Decide and
//     Apply together for callers without a journal.
//  6. Read the state: Quorum, Attendance, FloorHolder, FloorQueue,
//     SpeakingTime, Items, Votes, PendingVoters, or View(now) for the whole
//     state as JSON for clients.
//  7. Produce the draft minutes: DraftMinutes(state, location), then
//     WriteMarkdown or WriteHTML (French labels by default).
//
// Role permissions (is this token the chair?) are the caller's job. council
// checks only what depends on the session: a member acting for another seat,
// a ballot cast for a seat that is neither present nor represented by the
// caster, a vote refused while remote members take part.
//
// # Choices made here
//
//   - A remote member counts (quorum, votes, proxies) only after the clerk's
//     VerifyRemote; a lost connection is a RecordDeparture the caller sends
//     after the profile's departure grace.
//   - Quorum is recomputed on every read and checked when an item opens and
//     when a vote opens; the figures at those moments are kept in the events
//     for the minutes.
//   - A proxy (giver, holder, whole session or one item) is capped per holder
//     by the profile; the holder must be present to receive it and to use it.
//     A giver who arrives either suspends or revokes it, as the profile says.
//   - Points of order go before requests to speak; within each kind, first
//     asked, first called.
//   - A ballot is final: a second ballot for the same seat is refused, so
//     the names read out at a roll call are the names in the record.
//   - Each seat votes separately: a holder casts one ballot for their own
//     seat and one per proxy.
//   - In an electronic vote a ballot comes from the member's own device, but
//     the chair or the clerk records the answer of a member in the chamber
//     without one (the event names who recorded it); never a remote member's.
//   - A vote closes while members present or represented have not voted only
//     when the closer names exactly them; the record lists them as having
//     taken no part.
//   - Majority is computed per the profile; abstentions, blank papers and
//     members not voting are not votes cast. On a tie in a public vote the
//     chair's own ballot settles it (if the chair voted for or against); a
//     tied secret ballot is rejected.
//   - A secret ballot is held on paper in the chamber: the clerk records the
//     tellers' tally, never names. When one is requested while remote
//     members take part, the item is postponed (or the request refused) as
//     the profile says.
//   - Apply checks that events are coherent (references, transitions, time
//     order), not that they were lawful: a journal is the record of what
//     was decided, and a vote's proclaimed outcome is kept as recorded while
//     its counts must match the ballots.
package council
