package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/redis/go-redis/v9"
)

var _ Records = (*RedisJournal)(nil)

// Records in Redis, with P the prefix given to NewRedis:
//
//	P{records}:r:KIND:ID   hash: v (version) and d (the JSON)
//	P{records}:ids:KIND    set of the kind's ids
//
// As for journals, the hash tag keeps them in one Cluster slot so that the version check
// and the write run as one script.

func (r *RedisJournal) recordKey(kind, id string) string {
	return r.prefix + "{records}:r:" + kind + ":" + id
}
func (r *RedisJournal) recordIDsKey(kind string) string { return r.prefix + "{records}:ids:" + kind }

// putScript writes a record if its version is the expected one.
// KEYS: record hash, ids set. ARGV: expected version, JSON, id.
// Returns the new version, or -1 - the stored version when it differs.
var putScript = redis.NewScript(`
local v = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if v ~= tonumber(ARGV[1]) then return -1 - v end
redis.call('HSET', KEYS[1], 'v', v + 1, 'd', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
return v + 1
`)

func (r *RedisJournal) Put(ctx context.Context, kind, id string, expectVersion uint64, data json.RawMessage) (Record, error) {
	data, err := checkRecord(kind, id, data)
	if err != nil {
		return Record{}, err
	}
	if err := r.checkOpen(); err != nil {
		return Record{}, err
	}
	if data == nil {
		data = json.RawMessage("null")
	}
	n, err := putScript.Run(ctx, r.client, []string{r.recordKey(kind, id), r.recordIDsKey(kind)},
		expectVersion, string(data), id).Int64()
	if err != nil {
		return Record{}, fmt.Errorf("record %s %q: redis: %w", kind, id, err)
	}
	if n < 0 {
		return Record{}, recordConflict(kind, id, expectVersion, uint64(-1-n))
	}
	return Record{Kind: kind, ID: id, Version: uint64(n), Data: data}, nil
}

func (r *RedisJournal) Get(ctx context.Context, kind, id string) (Record, error) {
	if _, err := checkRecord(kind, id, nil); err != nil {
		return Record{}, err
	}
	if err := r.checkOpen(); err != nil {
		return Record{}, err
	}
	vals, err := r.client.HMGet(ctx, r.recordKey(kind, id), "v", "d").Result()
	if err != nil {
		return Record{}, fmt.Errorf("record %s %q: redis: %w", kind, id, err)
	}
	return redisRecord(kind, id, vals)
}

func redisRecord(kind, id string, vals []any) (Record, error) {
	v, _ := vals[0].(string)
	d, _ := vals[1].(string)
	if v == "" {
		return Record{}, recordNotFound(kind, id)
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n == 0 {
		return Record{}, fmt.Errorf("record %s %q: stored version %q is damaged", kind, id, v)
	}
	return Record{Kind: kind, ID: id, Version: n, Data: json.RawMessage(d)}, nil
}

func (r *RedisJournal) List(ctx context.Context, kind string) ([]Record, error) {
	if err := checkKind(kind); err != nil {
		return nil, err
	}
	if err := r.checkOpen(); err != nil {
		return nil, err
	}
	ids, err := r.client.SMembers(ctx, r.recordIDsKey(kind)).Result()
	if err != nil {
		return nil, fmt.Errorf("list records %s: redis: %w", kind, err)
	}
	slices.Sort(ids)
	cmds := make([]*redis.SliceCmd, len(ids))
	if _, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HMGet(ctx, r.recordKey(kind, id), "v", "d")
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list records %s: redis: %w", kind, err)
	}
	out := make([]Record, 0, len(ids))
	for i, id := range ids {
		rec, err := redisRecord(kind, id, cmds[i].Val())
		if errors.Is(err, ErrNotFound) {
			continue // deleted between the two reads
		}
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, nil
}

func (r *RedisJournal) Delete(ctx context.Context, kind, id string) error {
	if _, err := checkRecord(kind, id, nil); err != nil {
		return err
	}
	if err := r.checkOpen(); err != nil {
		return err
	}
	if _, err := r.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, r.recordKey(kind, id))
		p.SRem(ctx, r.recordIDsKey(kind), id)
		return nil
	}); err != nil {
		return fmt.Errorf("delete record %s %q: redis: %w", kind, id, err)
	}
	return nil
}
