package orderly

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
	// Unordered.
	one  func(*Record) (string, bool)
	many func(*Record) []string
}

// String names the mode: "key", "keys", "serial" or "unordered".
func (o Ordering) String() string { return o.name }

// ByKey orders records by their Kafka key: records with equal keys run in
// offset order, one at a time. A nil key is unordered; an empty non-nil key
// is a key like any other. This is the default.
func ByKey() Ordering {
	return Ordering{name: "key", one: func(r *Record) (string, bool) {
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
	return Ordering{name: "serial", one: func(*Record) (string, bool) { return "", true }}
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
