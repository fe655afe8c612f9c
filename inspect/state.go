package inspect

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/orderly-go/orderly"
)

// State is the document served as state.json: an orderly.Inspection made
// safe to show (keys truncated, errors shortened, no record values) and
// given stable snake_case names. The package documentation lists and
// explains every field of it and of the types below, by JSON name; a
// field listed there is present whenever the object holding it is (null
// where it says so). A Go client may decode state.json into a State.
type State struct {
	Time           time.Time        `json:"time"`
	ReleaseEnabled bool             `json:"release_enabled"`
	StallAfterMs   int64            `json:"stall_after_ms"`
	Engine         EngineState      `json:"engine"`
	Partitions     []PartitionState `json:"partitions"`
}

// EngineState is the engine-wide part of State.
type EngineState struct {
	InFlight       int64          `json:"in_flight"`
	MaxConcurrency int            `json:"max_concurrency"`
	ReadyActors    int            `json:"ready_actors"`
	HeldRecords    int64          `json:"held_records"`
	HeldBytes      int64          `json:"held_bytes"`
	MaxRecords     int64          `json:"max_records"`
	MaxBytes       int64          `json:"max_bytes"`
	Breaker        string         `json:"breaker"`
	Stuck          []StuckHandler `json:"stuck"`
}

// StuckHandler is a handler call running past twice its attempt timeout.
type StuckHandler struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	Offset    int64   `json:"offset"`
	Key       *string `json:"key"`
	Attempt   int     `json:"attempt"`
	RunningMs int64   `json:"running_ms"`
}

// PartitionState is one claimed partition.
type PartitionState struct {
	Topic          string       `json:"topic"`
	Partition      int32        `json:"partition"`
	Watermark      int64        `json:"watermark"`
	Committed      int64        `json:"committed"`
	End            int64        `json:"end"`
	Lag            int64        `json:"lag"`
	Uncommitted    int64        `json:"uncommitted"`
	MaxUncommitted int64        `json:"max_uncommitted"`
	HeldRecords    int64        `json:"held_records"`
	HeldBytes      int64        `json:"held_bytes"`
	MaxRecords     int64        `json:"max_records"`
	MaxBytes       int64        `json:"max_bytes"`
	InFlight       int64        `json:"in_flight"`
	Keys           int          `json:"keys"`
	Retrying       int          `json:"retrying"`
	Paused         bool         `json:"paused"`
	PauseReasons   []string     `json:"pause_reasons"`
	Stopping       bool         `json:"stopping"`
	Stalled        bool         `json:"stalled"`
	Blocking       *RecordState `json:"blocking"`
	TopKeys        []KeyState   `json:"top_keys"`
	Parked         int          `json:"parked"`
	ParkedKeys     []ParkedKey  `json:"parked_keys"`
}

// RecordState is one record held by the engine: the one blocking a
// partition, or the head of a key.
type RecordState struct {
	Offset       int64      `json:"offset"`
	Key          *string    `json:"key"`
	Keys         []string   `json:"keys"`
	State        string     `json:"state"`
	AgeMs        int64      `json:"age_ms"`
	Attempts     int        `json:"attempts"`
	LastError    *string    `json:"last_error"`
	FirstFailure *time.Time `json:"first_failure"`
	NextTryAt    *time.Time `json:"next_try_at"`
	NextTryInMs  *int64     `json:"next_try_in_ms"`
	WaitingOn    *KeyHead   `json:"waiting_on"`
	Behind       int        `json:"behind"`
}

// KeyHead names a key and the offset of the record at its head.
type KeyHead struct {
	Key    string `json:"key"`
	Offset int64  `json:"offset"`
}

// KeyState is one of a partition's busiest keys.
type KeyState struct {
	Key     string      `json:"key"`
	Records int         `json:"records"`
	Bytes   int64       `json:"bytes"`
	AgeMs   int64       `json:"age_ms"`
	Head    RecordState `json:"head"`
}

// ParkedKey is a parked key. Ref names it for the release endpoint
// without revealing it.
type ParkedKey struct {
	Key   string     `json:"key"`
	Until *time.Time `json:"until"`
	Ref   string     `json:"ref"`
}

// state converts an inspection.
func (h *Handler) state(in orderly.Inspection) State {
	s := State{
		Time:           in.Time,
		ReleaseEnabled: h.cfg.release,
		StallAfterMs:   h.cfg.stallAfter.Milliseconds(),
		Engine: EngineState{
			InFlight: in.InFlight, MaxConcurrency: in.MaxConcurrency, ReadyActors: in.ReadyActors,
			HeldRecords: in.HeldRecords, HeldBytes: in.HeldBytes,
			MaxRecords: in.EngineLimits.Records, MaxBytes: in.EngineLimits.Bytes,
			Breaker: string(in.Breaker), Stuck: []StuckHandler{},
		},
		Partitions: []PartitionState{},
	}
	for _, st := range in.Stuck {
		s.Engine.Stuck = append(s.Engine.Stuck, StuckHandler{Topic: st.Topic, Partition: st.Partition, Offset: st.Offset,
			Key: h.optKey(st.Key, st.HasKey), Attempt: st.Attempt, RunningMs: st.Running.Milliseconds()})
	}
	for _, p := range in.Partitions {
		ps := PartitionState{
			Topic: p.Topic, Partition: p.Partition, Watermark: p.Watermark, Committed: p.Committed,
			End: p.End, Lag: p.Lag, Uncommitted: p.Uncommitted, MaxUncommitted: p.MaxUncommitted,
			HeldRecords: p.HeldRecords, HeldBytes: p.HeldBytes, MaxRecords: p.Limits.Records, MaxBytes: p.Limits.Bytes,
			InFlight: p.InFlight, Keys: p.Keys, Retrying: p.Retrying, Paused: p.Paused, PauseReasons: []string{},
			Stopping: p.Stopping, TopKeys: []KeyState{}, Parked: p.Parked, ParkedKeys: []ParkedKey{},
		}
		for _, r := range p.Reasons {
			ps.PauseReasons = append(ps.PauseReasons, string(r))
		}
		if p.Blocking != nil {
			b := h.record(p.Blocking, in.Time)
			ps.Blocking = &b
			ps.Stalled = p.Blocking.Age >= h.cfg.stallAfter
		}
		for _, k := range p.TopKeys {
			ps.TopKeys = append(ps.TopKeys, KeyState{Key: h.key(k.Key), Records: k.Records, Bytes: k.Bytes,
				AgeMs: k.Age.Milliseconds(), Head: h.record(&k.Head, in.Time)})
		}
		for _, k := range p.ParkedKeys {
			pk := ParkedKey{Key: h.key(k.Key), Ref: h.ref(p.Topic, p.Partition, k.Key)}
			if !k.Until.IsZero() {
				u := k.Until
				pk.Until = &u
			}
			ps.ParkedKeys = append(ps.ParkedKeys, pk)
		}
		s.Partitions = append(s.Partitions, ps)
	}
	return s
}

func (h *Handler) record(r *orderly.RecordInspection, now time.Time) RecordState {
	rs := RecordState{Offset: r.Offset, Key: h.optKey(r.Key, r.HasKey), State: string(r.State),
		AgeMs: r.Age.Milliseconds(), Attempts: r.Attempts, Behind: r.Behind}
	if r.Keys != nil {
		rs.Keys = make([]string, len(r.Keys))
		for i, k := range r.Keys {
			rs.Keys[i] = h.key(k)
		}
	}
	if r.LastError != nil && h.cfg.maxErrorLen > 0 {
		e := truncate(r.LastError.Error(), h.cfg.maxErrorLen)
		rs.LastError = &e
	}
	if !r.FirstFailure.IsZero() {
		f := r.FirstFailure
		rs.FirstFailure = &f
	}
	if !r.NextTry.IsZero() {
		at := r.NextTry
		in := max(at.Sub(now).Milliseconds(), 0)
		rs.NextTryAt, rs.NextTryInMs = &at, &in
	}
	if r.WaitingOn != nil {
		rs.WaitingOn = &KeyHead{Key: h.key(r.WaitingOn.Key), Offset: r.WaitingOn.Offset}
	}
	return rs
}

// key is k as shown: valid UTF-8, at most the configured length.
func (h *Handler) key(k string) string { return truncate(k, h.cfg.maxKeyLen) }

func (h *Handler) optKey(k string, ok bool) *string {
	if !ok {
		return nil
	}
	s := h.key(k)
	return &s
}

// truncate makes s valid UTF-8 and cuts it to at most n characters, the
// last of them "…" when it was cut.
func truncate(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i, count := 0, 0
	for i = range s {
		if count == n-1 {
			break
		}
		count++
	}
	return s[:i] + "…"
}

// ref names a parked key of a partition without revealing it: a MAC of
// the three under the handler's random secret.
func (h *Handler) ref(topic string, partition int32, key string) string {
	m := hmac.New(sha256.New, h.secret[:])
	m.Write([]byte(topic))
	m.Write([]byte{0, byte(partition >> 24), byte(partition >> 16), byte(partition >> 8), byte(partition)})
	m.Write([]byte(key))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:18])
}
