// Package store keeps Hemicycle's journals: append-only, hash-chained records of
// everything that happens in a deliberation, one journal per room or session.
//
// Each Entry carries the hash of the entry before it, so anyone holding a copy of a
// journal can check offline, with nothing but SHA-256, that no entry was edited,
// removed, inserted or reordered (Verify, VerifyFile). The package is generic: an
// entry is a type tag and a JSON payload; the council package decides what they mean.
//
// Two implementations share the Journal interface:
//
//   - FileJournal (OpenFile): the embedded single-node default, one JSON-lines file
//     per journal in a directory.
//   - RedisJournal (NewRedis): for several nodes; the chain is extended atomically on
//     the Redis server so that nodes appending to the same journal cannot fork it.
//
// # What a caller does
//
//  1. Open a store: OpenFile(dir, WithSigner(ring)) or NewRedis(client, prefix,
//     WithSigner(ring)). For a FileJournal, log what Recovery() reports (torn tails
//     cut after a crash, damaged journals).
//  2. Rebuild state: Read(ctx, journal, 1) and fold the entries.
//  3. For each change: Append(ctx, journal, expectSeq, at, type, data). Pass as
//     expectSeq the seq the new entry must take (the last seq the state was built from,
//     plus one) when the change was validated against that state; ErrConflict then
//     means someone else appended first: re-read and validate again. Pass 0 when order
//     does not matter.
//  4. Close when done.
//
// # Durability
//
// Append returns only when the entry is durable. For FileJournal this means the line
// was written and fdatasync'ed (fsync where fdatasync does not exist), and the
// directory was fsync'ed when the file was created. For RedisJournal it means Redis
// executed the append and replied. That reply is only as durable as Redis is
// configured to be: with `appendonly yes` and `appendfsync always` Redis writes and
// fsyncs its append-only file before it sends any reply, so an acknowledged entry
// survives a crash of Redis or of its machine. With the default `appendfsync
// everysec` up to a second of acknowledged entries can be lost when Redis's machine
// crashes, and without AOF everything since the last snapshot can. Councils should run
// Redis with:
//
//	appendonly yes
//	appendfsync always
//
// Replication to replicas is asynchronous: if the primary dies and Sentinel promotes
// a replica, acknowledged entries the replica had not received are lost. WithReplicaWait
// makes Append also wait (Redis WAIT) until that many replicas hold the entry.
//
// An Append that returns an error may or may not have been recorded (the write may
// have reached the disk or Redis before the failure was noticed). Re-read before
// retrying; the council's own rules (one ballot per seat) make a retry safe.
//
// # Hash encoding
//
// The hash of an entry is the lowercase hex SHA-256 of the concatenation of seven
// fields, each written as its length in bytes (unsigned 64-bit big-endian) followed by
// its bytes:
//
//  1. the domain tag "hemicycle-journal-v1"
//  2. journal: the journal name (UTF-8)
//  3. seq: decimal digits, no sign, no leading zeros ("1", "2", ... "17")
//  4. at: the instant in UTC as RFC 3339 with up to nine fraction digits, trailing
//     zeros of the fraction removed and no fraction when it is zero (Go's
//     time.RFC3339Nano), e.g. "2026-03-05T18:30:00.25Z"
//  5. type: the type tag (UTF-8)
//  6. data: the payload's JSON text exactly as it appears in the stored entry (the
//     store writes it compact, with <, > and & escaped as \u003c, \u003e, \u0026)
//  7. prev: the previous entry's hash as 64 lowercase hex digits, or "" for seq 1
//
// Length prefixes make the encoding unambiguous: no two different entries encode to
// the same bytes. The file format is one JSON object per line with the fields
// journal, seq, at, type, data, prev, hash, and key and sig when signed; since the store always writes `at` in UTC
// and `data` in the form above, a verifier can hash the texts it finds in the line.
//
// # Signatures
//
// A chain alone proves nothing against someone who can write the store: they can change an
// entry and compute every hash again. A store opened WithSigner therefore signs each entry
// it appends with Ed25519 (RFC 8032): the key of the Keyring that covers the entry's time
// signs the concatenation, with the same length prefixes, of the tag
// "hemicycle-journal-sig-v1", the key's id and the entry's hash (64 hex digits). The entry
// carries the key's id in "key" and the signature, base64url without padding, in "sig".
// Since the hash covers the chain before it, the last entry's signature vouches for the
// whole journal: Read checks the chain and that one signature, and refuses a journal
// whose last entry's signature fails or names a key the ring does not hold, naming the
// first entry whose signature fails. VerifySigned and VerifyFile check every entry's
// signature, offline, against the public keys a node publishes (PublicKeys).
//
// Journals kept before signing existed stay readable: entries written before signing
// began (before the oldest key's start, PublicKeys.SigningBegan) may be unsigned, and the
// first signed entry's signature covers them from then on (Unsigned counts them). An
// unsigned entry after a signed one, or written after signing began, is refused: that is
// what stripping the signatures of a re-hashed chain leaves.
//
// Keys rotate like API keys: a new key signs from its start time on, the older ones stay
// in the ring, and in the published keys, so that what they signed still verifies. Every
// node of a cluster holds the same ring, so that each verifies what another signed; it
// lives in a file beside the configuration, never in the store, since a key kept in Redis
// would be readable by exactly those who could rewrite the journal there.
//
// A chain, signed or not, cannot show that entries were cut from its end. Publish the
// last hash and signature (the minutes print them) to anchor a journal.
package store
