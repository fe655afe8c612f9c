package orderly

import (
	"context"
	"hash/maphash"
	"log/slog"
	"slices"
	"time"

	"github.com/orderly-go/orderly/actors"
)

// Ordering says which records must be handled in order relative to each
// other. Records are ordered only within their partition (Kafka orders
// nothing across partitions): two records with the same key on different
// partitions are independent.
//
// Within a key the handler sees records in offset order, one at a time.
// Records whose key function returns no key are unordered: they run as soon
// as a concurrency slot is free.
type Ordering struct {
	name string
	// exactly one of one and many is set for ordered modes; neither for
	// Unordered. byKey and serial mark the built-in modes, which the
	// dispatcher routes without calling one.
	one    func(*Record) (string, bool)
	many   func(*Record) []string
	byKey  bool
	serial bool
}

// String names the mode: "key", "keys", "serial" or "unordered".
func (o Ordering) String() string { return o.name }

// ByKey orders records by their Kafka key: records with equal keys run in
// offset order, one at a time. A nil key is unordered; an empty non-nil key
// is a key like any other. This is the default.
func ByKey() Ordering {
	return Ordering{name: "key", byKey: true, one: func(r *Record) (string, bool) {
		if r.Key == nil {
			return "", false
		}
		return string(r.Key), true
	}}
}

// ByKeyFunc orders records by the key f returns; ok == false makes the
// record unordered. f must be safe for concurrent use and must not modify
// the record.
func ByKeyFunc(f func(*Record) (key string, ok bool)) Ordering {
	return Ordering{name: "key", one: f}
}

// ByKeys orders records that carry several correlation ids (an order id and
// a customer id, say). A record runs only after every earlier record of its
// partition that shares any of its ids has finished, and later records of
// each of its ids wait for it. An empty result makes the record unordered;
// duplicate ids count once.
func ByKeys(f func(*Record) []string) Ordering {
	return Ordering{name: "keys", many: f}
}

// Serial handles each partition's records one at a time, in offset order:
// the whole partition is one key. Partitions still run in parallel.
func Serial() Ordering {
	return Ordering{name: "serial", serial: true, one: func(*Record) (string, bool) { return "", true }}
}

// Unordered handles records in any order, as many at once as the
// concurrency limit allows. Commits still never pass an unfinished record.
func Unordered() Ordering {
	return Ordering{name: "unordered"}
}

func (o Ordering) valid() bool {
	return o.name == "unordered" || (o.one == nil) != (o.many == nil)
}

// keys appends r's keys to buf.
func (o Ordering) keys(r *Record, buf []string) []string {
	switch {
	case o.one != nil:
		if k, ok := o.one(r); ok {
			return append(buf, k)
		}
	case o.many != nil:
		return append(buf, o.many(r)...)
	}
	return buf
}

// route sets m's keys for r: 64-bit hashes of the ordering's keys (see
// actors.Message; a collision orders two keys together, which costs
// parallelism, never order). With parking it also keeps the keys
// themselves. A key function that panics leaves the record without keys
// and marks it to fail without a handler call (see chain.step).
func (e *Engine) route(r *Record, m *actors.Message[*task]) {
	o := &e.cfg.ordering
	switch {
	case o.byKey:
		if r.Key != nil {
			m.Key, m.HasKey = maphash.Bytes(e.seed, r.Key), true
			if e.cfg.parking {
				m.Msg.keys = []string{string(r.Key)}
			}
		}
	case o.serial:
		m.HasKey = true // every record of the partition: one key
		if e.cfg.parking {
			m.Msg.keys = []string{""}
		}
	case o.one != nil:
		k, ok, err := callKeyFunc(o.one, r)
		switch {
		case err != nil:
			e.unroutable(r, m, err)
		case ok:
			m.Key, m.HasKey = maphash.String(e.seed, k), true
			if e.cfg.parking {
				m.Msg.keys = []string{k}
			}
		}
	case o.many != nil:
		ks, err := callKeysFunc(o.many, r)
		if err != nil {
			e.unroutable(r, m, err)
			return
		}
		if len(ks) == 0 {
			return
		}
		m.Keys = make([]uint64, len(ks))
		for i, k := range ks {
			m.Keys[i] = maphash.String(e.seed, k)
		}
		if e.cfg.parking {
			m.Msg.keys = slices.Clone(ks)
		}
	}
}

// unroutable marks a record whose key function failed: it runs without
// keys and goes straight to the failure path (recovery, dead letter, log)
// with a permanent error, never to the handler.
func (e *Engine) unroutable(r *Record, m *actors.Message[*task], err error) {
	e.log.LogAttrs(context.Background(), slog.LevelError, "orderly: key function panicked; the record fails without a handler call",
		recordAttrs(r, slog.Any("error", err))...)
	m.Msg.fail = &failure{first: time.Now(), err: Permanent(err), unroutable: true}
}

func callKeyFunc(f func(*Record) (string, bool), r *Record) (k string, ok bool, err error) {
	err = protect("key function", func() error { k, ok = f(r); return nil })
	return k, ok, err
}

func callKeysFunc(f func(*Record) []string, r *Record) (ks []string, err error) {
	err = protect("key function", func() error { ks = f(r); return nil })
	return ks, err
}
