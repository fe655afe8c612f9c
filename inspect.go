package orderly

import (
	"cmp"
	"errors"
	"hash/maphash"
	"slices"
	"sync"
	"time"

	"github.com/orderly-go/orderly/actors"
	"github.com/orderly-go/orderly/mailbox"
	"github.com/sony/gobreaker/v2"
)

// Inspection is a snapshot that answers "why has it stopped?": beyond
// Stats, it names for each partition the record holding its watermark
// back, what that record is doing or waiting for, the keys holding the
// most, and every reason the partition is paused. Engine.Inspect takes it.
//
// Each partition's keys and records are read in one instant (under its
// key group's lock); its watermark is the committer's as of the
// completions it has been told of (a moment behind the dispatcher);
// different partitions, the credits and the engine-wide figures are each
// read a moment apart, so they are consistent enough to explain a stall,
// not to add up exactly.
type Inspection struct {
	Time           time.Time    // when it was taken
	InFlight       int64        // handler calls running now
	MaxConcurrency int          // the most that may run at once (WithMaxConcurrency)
	ReadyActors    int          // key actors with work waiting for a concurrency slot
	HeldRecords    int64        // records held by the engine (dispatched, not finished)
	HeldBytes      int64        // their bytes (Record.Size)
	EngineLimits   Limits       // the engine buffer (WithEngineBuffer)
	Breaker        BreakerState // the circuit breaker's state; BreakerNone without one
	// Stuck lists the handler calls running past twice their attempt
	// timeout now (see WithAttemptTimeout; without one, no call is
	// counted stuck), oldest first. Stats.Stuck counts them.
	Stuck      []StuckHandler
	Partitions []PartitionInspection // sorted by topic, then partition
}

// BreakerState is the circuit breaker's state (WithCircuitBreaker).
type BreakerState string

// The breaker's states.
const (
	BreakerNone     BreakerState = "none"      // no breaker configured
	BreakerClosed   BreakerState = "closed"    // handlers run
	BreakerOpen     BreakerState = "open"      // no handler runs; every claim is paused
	BreakerHalfOpen BreakerState = "half-open" // a few trial attempts run
)

// StuckHandler is one handler call running past twice its attempt
// timeout: its context is done, but it has not returned.
type StuckHandler struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       string // the record's key (Record.Key); empty when it has none
	HasKey    bool   // whether the record has a key (Record.Key != nil)
	Attempt   int    // which attempt this is, from 1
	Running   time.Duration
}

// PartitionInspection describes one claimed partition.
type PartitionInspection struct {
	Topic     string
	Partition int32

	Watermark int64 // next offset to commit: the lowest unfinished one; -1 when unknown
	Committed int64 // last committed next offset; -1 when none
	End       int64 // the partition's end, when the claim knows it (EndOffsetter); -1 otherwise
	Lag       int64 // End - Committed; -1 when unknown

	Uncommitted    int64  // the uncommitted window in use: records dispatched the watermark has not passed
	MaxUncommitted int64  // its limit (WithMaxUncommitted)
	HeldRecords    int64  // records dispatched and not finished
	HeldBytes      int64  // their bytes
	Limits         Limits // the partition buffer (WithPartitionBuffer)
	InFlight       int64  // handler calls running for this partition
	Keys           int    // keys with queued or running records
	Retrying       int    // records waiting out a delay: a retry, a rate limit, the breaker or a dead-letter retry

	Paused   bool          // fetching paused by backpressure
	Reasons  []PauseReason // every reason in force; nil when not paused
	Stopping bool          // the claim is being revoked or the engine is stopping

	// Blocking is the record at the watermark, which every commit of the
	// partition waits for; nil when every record dispatched is finished.
	Blocking *RecordInspection
	// TopKeys are the keys with the most records queued or running, most
	// first (ties: the oldest head first), at most InspectOptions.TopKeys.
	TopKeys []KeyInspection
	// Parked is the number of keys parked after a dead letter
	// (WithKeyParking); ParkedKeys lists them, sorted, at most
	// InspectOptions.ParkedKeys.
	Parked     int
	ParkedKeys []ParkedKey
}

// RecordState says what a record held by the engine is doing. The values
// are short kebab-case names, stable for dashboards and logs.
type RecordState string

// The states of a record.
const (
	// RecordRunning: its handler is running (or its fallback, after the
	// last attempt failed).
	RecordRunning RecordState = "running"
	// RecordReady: it heads every key it has and waits for a concurrency
	// slot (WithMaxConcurrency).
	RecordReady RecordState = "ready"
	// RecordRetryWait: an attempt failed; it waits for its next attempt,
	// due at NextTry (WithRetry).
	RecordRetryWait RecordState = "retry-wait"
	// RecordBehindKey: it waits behind an earlier record of one of its
	// keys (WaitingOn).
	RecordBehindKey RecordState = "behind-key"
	// RecordRateLimited: it waits for a rate-limit token, due at NextTry
	// (WithRateLimit, WithPartitionRateLimit).
	RecordRateLimited RecordState = "rate-limited"
	// RecordBreakerOpen: the circuit breaker is open; it waits, and asks
	// again at NextTry (WithCircuitBreaker).
	RecordBreakerOpen RecordState = "breaker-open"
	// RecordDeadLettering: it failed for good and is being written to the
	// dead-letter sink.
	RecordDeadLettering RecordState = "dead-lettering"
	// RecordDeadLetterRetry: a dead-letter write failed; the next is due
	// at NextTry.
	RecordDeadLetterRetry RecordState = "dead-letter-retry"
	// RecordParked: one of its keys is parked (WithKeyParking), so it
	// goes to the dead-letter sink without a handler call; NextTry is set
	// when it waits to retry that write.
	RecordParked RecordState = "parked"
	// RecordAbandoned: its claim is ending and it was left, unfinished,
	// for the partition's next owner.
	RecordAbandoned RecordState = "abandoned"
)

// RecordInspection describes one record held by the engine. Its value and
// headers are never included.
type RecordInspection struct {
	Offset int64
	Key    string // the record's key (Record.Key) as a string; empty when it has none
	HasKey bool   // whether the record has a key (Record.Key != nil)
	// Keys are its ordering keys, the ones it waits on and that wait on
	// it: ByKey, its key; ByKeyFunc and ByKeys, what the function
	// returned; Serial, the empty string (the whole partition is one
	// key); nil when it is unordered.
	Keys  []string
	State RecordState
	// Age is the time since it was dispatched (handed to its keys).
	Age time.Duration
	// Attempts is the handler calls made, the running one included.
	Attempts int
	// LastError is the last error the record met: its handler's (or, for
	// a parked record, ErrKeyParked), or, while a dead-letter write is
	// retried, that write's; nil if none.
	LastError    error
	FirstFailure time.Time // when its first attempt failed; zero if none
	// NextTry is when a waiting record is tried again (RecordRetryWait,
	// RecordRateLimited, RecordBreakerOpen, RecordDeadLetterRetry, and
	// RecordParked while waiting); zero otherwise.
	NextTry time.Time
	// WaitingOn, for RecordBehindKey, is the key it waits on and the
	// record heading that key; nil otherwise.
	WaitingOn *KeyHead
	// Behind is the records queued behind it on its keys, when it heads
	// them all.
	Behind int
}

// KeyHead names a key and the offset of the record at its head.
type KeyHead struct {
	Key    string
	Offset int64
}

// KeyInspection describes one ordering key with queued or running
// records.
type KeyInspection struct {
	Key     string        // the ordering key (Serial: the empty string)
	Records int           // records queued or running
	Bytes   int64         // their bytes
	Age     time.Duration // of its oldest record, the head, since dispatch
	Head    RecordInspection
}

// ParkedKey is a key parked after a dead letter (WithKeyParking).
type ParkedKey struct {
	Key   string
	Until time.Time // when its parking ends; zero: until Engine.ReleaseKey
}

// InspectOptions tunes InspectWith. The zero value gives the defaults.
type InspectOptions struct {
	// TopKeys is how many keys each partition lists (TopKeys). 0 means
	// DefaultInspectTopKeys; negative lists none.
	TopKeys int
	// ParkedKeys is how many parked keys each partition lists. 0 means
	// DefaultInspectParkedKeys; negative lists none (Parked still counts
	// them).
	ParkedKeys int
}

// Defaults of InspectOptions.
const (
	DefaultInspectTopKeys    = 5
	DefaultInspectParkedKeys = 20
)

// Inspect returns a snapshot with the default options; see Inspection
// and InspectWith.
func (e *Engine) Inspect() Inspection { return e.InspectWith(InspectOptions{}) }

// InspectWith returns a snapshot that names, for each partition, the
// record holding its watermark and why (see Inspection). It is safe to
// call at any time from any goroutine, hooks included, and before or after
// Run.
//
// Its cost is paid by the caller: for each partition it holds the
// partition's key group's lock while it walks the records the partition
// holds (O(records held + keys)), which delays that partition's dispatcher
// for as long. When nobody inspects, the engine pays one clock reading per
// dispatched batch (the records' dispatch time) and nothing per record.
// Key functions (ByKeyFunc, ByKeys) are called again, outside any lock,
// to name the keys of the records it reports.
func (e *Engine) InspectWith(o InspectOptions) Inspection {
	if o.TopKeys == 0 {
		o.TopKeys = DefaultInspectTopKeys
	}
	if o.ParkedKeys == 0 {
		o.ParkedKeys = DefaultInspectParkedKeys
	}
	now := time.Now()
	in := Inspection{
		Time:           now,
		InFlight:       e.running(nil),
		MaxConcurrency: e.sched.Limit(),
		ReadyActors:    e.sched.Ready(),
		HeldRecords:    e.records.Held(),
		HeldBytes:      e.bytes.Held(),
		EngineLimits:   Limits{Records: e.records.High(), Bytes: e.bytes.High()},
		Breaker:        e.breakerState(),
		Stuck:          e.stuckCalls.list(now),
	}
	for _, p := range e.partitions() {
		in.Partitions = append(in.Partitions, p.inspect(now, o))
	}
	slices.SortFunc(in.Partitions, func(a, b PartitionInspection) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	return in
}

func (e *Engine) breakerState() BreakerState {
	if e.breaker == nil {
		return BreakerNone
	}
	switch e.breaker.cb.State() {
	case gobreaker.StateOpen:
		return BreakerOpen
	case gobreaker.StateHalfOpen:
		return BreakerHalfOpen
	}
	return BreakerClosed
}

// dispatchEpoch is the origin of tasks' dispatch stamps: a monotonic
// reading, so that a stamp costs one monotonic clock reading (no wall
// clock) and is immune to clock steps.
var dispatchEpoch = time.Now()

// dispatchStamp is a task's dispatch stamp for now (never 0, which means
// "not stamped"); at is a time already taken, or zero to read the clock.
func dispatchStamp(at time.Time) int64 {
	if at.IsZero() {
		return int64(time.Since(dispatchEpoch)) + 1
	}
	return int64(at.Sub(dispatchEpoch)) + 1
}

// waitKind is why a task waits out a delay, as the failure chain noted it.
type waitKind uint8

const (
	waitNone waitKind = iota
	waitRetry
	waitRateLimit
	waitBreaker
	waitDeadLetter
)

// taskView is what Inspect may read of a task beyond what is fixed at
// dispatch: written by the failure chain on its slow paths (never for a
// record that succeeds at its first attempt) and read by Inspect, both
// under the partition's viewMu.
type taskView struct {
	attempts   int
	err        error
	first      time.Time
	wait       waitKind // why it waits, when its group holds it delayed
	until      time.Time
	deadLetter bool // on its way to the dead-letter sink
	parked     bool // ...because one of its keys is parked
}

// note records t's state for Inspect, with why it is about to wait and for
// how long (waitNone: it is not). It runs on t's worker, on the failure
// chain's slow paths, and takes the partition's viewMu briefly.
func (p *partition) note(t *task, w waitKind, d time.Duration) { p.noteErr(t, w, d, nil) }

// noteErr is note with the error that makes it wait, when that is not
// the record's own last error (a failed dead-letter write).
func (p *partition) noteErr(t *task, w waitKind, d time.Duration, err error) {
	v := taskView{attempts: t.attempt, wait: w, err: err}
	if w != waitNone {
		v.until = time.Now().Add(d)
	}
	if f := t.fail; f != nil {
		v.first, v.deadLetter = f.first, f.deadLetter
		v.parked = f.deadLetter && errors.Is(f.err, ErrKeyParked)
		if v.err == nil {
			v.err = f.err
		}
	}
	p.viewMu.Lock()
	if t.view == nil {
		t.view = &v
	} else {
		*t.view = v
	}
	p.viewMu.Unlock()
}

// stuckSet is the handler calls running past twice their attempt timeout.
// The chain's stuck timer adds a call and the call's return removes it;
// the two may arrive in either order, so each call keeps a count.
type stuckSet struct {
	mu    sync.Mutex // guards calls; a leaf
	calls map[stuckID]*stuckCall
}

type stuckID struct {
	p       *partition
	rec     *Record
	attempt int
}

type stuckCall struct {
	n     int
	since time.Time // when the attempt started
}

// changed adds (stuck) or removes a stuck call; after is how long it had
// run when it was found stuck.
func (s *stuckSet) changed(p *partition, r *Record, attempt int, stuck bool, after time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := stuckID{p, r, attempt}
	c := s.calls[id]
	if c == nil {
		if s.calls == nil {
			s.calls = make(map[stuckID]*stuckCall)
		}
		c = &stuckCall{}
		s.calls[id] = c
	}
	if stuck {
		c.n++
		c.since = time.Now().Add(-after)
	} else {
		c.n--
	}
	if c.n == 0 {
		delete(s.calls, id)
	}
}

func (s *stuckSet) list(now time.Time) []StuckHandler {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []StuckHandler
	for id, c := range s.calls {
		if c.n <= 0 {
			continue
		}
		out = append(out, StuckHandler{Topic: id.p.topic, Partition: id.p.id, Offset: id.rec.Offset,
			Key: string(id.rec.Key), HasKey: id.rec.Key != nil, Attempt: id.attempt, Running: now.Sub(c.since)})
	}
	slices.SortFunc(out, func(a, b StuckHandler) int {
		return cmp.Or(cmp.Compare(b.Running, a.Running), cmp.Compare(a.Topic, b.Topic),
			cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Offset, b.Offset))
	})
	return out
}

// seenTask is what inspect copies of a task under the group's lock.
type seenTask struct {
	offset    int64
	rec       *Record
	keys      []string // the ordering keys, when parking kept them
	born      int64
	view      taskView
	place     actors.Place
	behind    int
	blockedBy uint64
	ahead     *seenTask // the record heading blockedBy
}

// seeTask copies what inspect reads of t; the group's lock is held (so t
// stays where it is) and viewMu is taken for its view.
func (p *partition) seeTask(t *task, place actors.Place) seenTask {
	s := seenTask{offset: t.offset, rec: t.rec, keys: t.keys, born: t.born, place: place}
	p.viewMu.Lock()
	if t.view != nil {
		s.view = *t.view
	}
	p.viewMu.Unlock()
	return s
}

func (p *partition) seeMessage(m actors.MessageView[*task]) seenTask {
	s := p.seeTask(*m.Msg, m.Place)
	s.behind = m.Behind
	if m.Ahead != nil {
		a := p.seeTask(*m.Ahead, 0)
		s.blockedBy, s.ahead = m.BlockedBy, &a
	}
	return s
}

type seenKey struct {
	hash  uint64
	load  mailbox.Limits
	depth int
	head  seenTask
}

// before says whether k ranks before o among the top keys: more records
// first, then the older head.
func (k *seenKey) before(o *seenKey) bool {
	if k.depth != o.depth {
		return k.depth > o.depth
	}
	return k.head.born < o.head.born
}

// inspect describes the partition; see Engine.InspectWith.
func (p *partition) inspect(now time.Time, o InspectOptions) PartitionInspection {
	pi := PartitionInspection{
		Topic: p.topic, Partition: p.id,
		End: -1, Lag: -1,
		MaxUncommitted: p.window.High(),
		Limits:         Limits{Records: p.records.High(), Bytes: p.bytes.High()},
	}
	var (
		blocking *seenTask
		top      []seenKey
	)
	pi.Watermark = p.cp.Watermark()
	pending := p.cp.InFlight() > 0
	p.group.Walk(func(k actors.KeyView[*task]) {
		pi.Keys++
		if o.TopKeys < 0 {
			return
		}
		sk := seenKey{hash: k.Key, load: k.Load, depth: k.Depth}
		sk.head.born = (*k.Head.Msg).born
		if len(top) == o.TopKeys && !sk.before(&top[len(top)-1]) {
			return
		}
		sk.head = p.seeMessage(k.Head)
		i := 0
		for i < len(top) && top[i].before(&sk) {
			i++
		}
		top = slices.Insert(top, i, sk)
		if len(top) > o.TopKeys {
			top = top[:o.TopKeys]
		}
	}, func(m actors.MessageView[*task]) {
		if pending && (*m.Msg).offset == pi.Watermark {
			s := p.seeMessage(m)
			blocking = &s
		}
	})

	pi.Committed = p.cp.Committed()
	if eo, ok := p.claim.(EndOffsetter); ok {
		pi.End = eo.EndOffset()
		if pi.End >= 0 && pi.Committed >= 0 {
			pi.Lag = max(pi.End-pi.Committed, 0)
		}
	}
	pi.Uncommitted = p.window.Held()
	pi.HeldRecords, pi.HeldBytes = p.records.Held(), p.bytes.Held()
	pi.InFlight = p.e.running(p)
	pi.Retrying = p.group.Delayed()
	pi.Paused = p.valve.Paused()
	pi.Reasons = pauseReasonsOf(p.valve.Reasons())
	pi.Stopping = p.stopping.Load()

	stamp := dispatchStamp(now)
	switch {
	case blocking != nil:
		r := p.e.describe(blocking, stamp, now)
		pi.Blocking = &r
	case pending && pi.Stopping:
		pi.Blocking = &RecordInspection{Offset: pi.Watermark, State: RecordAbandoned}
	}
	for _, k := range top {
		head := p.e.describe(&k.head, stamp, now)
		pi.TopKeys = append(pi.TopKeys, KeyInspection{
			Key: p.e.keyNamed(k.hash, &k.head), Records: k.depth, Bytes: k.load.Bytes,
			Age: head.Age, Head: head,
		})
	}

	parked := p.parked.Keys(now)
	pi.Parked = len(parked)
	if o.ParkedKeys > 0 && len(parked) > 0 {
		for k, until := range parked {
			pi.ParkedKeys = append(pi.ParkedKeys, ParkedKey{Key: k, Until: until})
		}
		slices.SortFunc(pi.ParkedKeys, func(a, b ParkedKey) int { return cmp.Compare(a.Key, b.Key) })
		pi.ParkedKeys = slices.Clip(pi.ParkedKeys[:min(len(pi.ParkedKeys), o.ParkedKeys)])
	}
	return pi
}

// describe turns what inspect saw of a task into a RecordInspection. It
// runs with no lock held (it may call the ordering's key function).
func (e *Engine) describe(s *seenTask, stamp int64, now time.Time) RecordInspection {
	v := &s.view
	r := RecordInspection{
		Offset: s.offset, Key: string(s.rec.Key), HasKey: s.rec.Key != nil,
		Keys: e.keyStrings(s), Attempts: v.attempts, LastError: v.err, FirstFailure: v.first,
	}
	if s.born > 0 {
		r.Age = time.Duration(max(stamp-s.born, 0))
	}
	switch s.place {
	case actors.Queued:
		r.State = RecordBehindKey
		if s.ahead != nil {
			r.WaitingOn = &KeyHead{Key: e.keyNamed(s.blockedBy, s.ahead), Offset: s.ahead.offset}
		}
	case actors.Delayed:
		r.NextTry = v.until
		switch {
		case v.parked:
			r.State = RecordParked
		case v.wait == waitDeadLetter || v.deadLetter:
			r.State = RecordDeadLetterRetry
		case v.wait == waitRateLimit:
			r.State = RecordRateLimited
		case v.wait == waitBreaker:
			r.State = RecordBreakerOpen
		default:
			r.State = RecordRetryWait
		}
	case actors.Ready:
		r.State = RecordReady
	default:
		switch {
		case v.parked:
			r.State = RecordParked
		case v.deadLetter:
			r.State = RecordDeadLettering
		default:
			r.State = RecordRunning
			r.Attempts++ // the one running now
		}
	}
	if s.place != actors.Queued {
		r.Behind = s.behind
	}
	return r
}

// keyStrings returns the ordering keys of the record s saw.
func (e *Engine) keyStrings(s *seenTask) []string {
	if s.keys != nil {
		return s.keys
	}
	o := &e.cfg.ordering
	r := s.rec
	switch {
	case o.byKey:
		if r.Key == nil {
			return nil
		}
		return []string{string(r.Key)}
	case o.serial:
		return []string{""}
	case o.one != nil:
		if k, ok, err := callKeyFunc(o.one, r); err == nil && ok {
			return []string{k}
		}
	case o.many != nil:
		if ks, err := callKeysFunc(o.many, r); err == nil && len(ks) > 0 {
			return ks
		}
	}
	return nil
}

// keyNamed finds which of the ordering keys of the record s saw hashes to
// h (see route); "" when none does.
func (e *Engine) keyNamed(h uint64, s *seenTask) string {
	ks := e.keyStrings(s)
	if e.cfg.ordering.serial {
		return ""
	}
	if len(ks) == 1 {
		return ks[0]
	}
	for _, k := range ks {
		if maphash.String(e.seed, k) == h {
			return k
		}
	}
	return ""
}
