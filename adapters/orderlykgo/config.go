package orderlykgo

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kversion"
)

// Option configures a Source.
type Option func(*options)

type options struct {
	logger      *slog.Logger
	claimBuffer int
	errs        []error
}

// DefaultClaimBuffer is the claim buffer NewSource uses unless
// WithClaimBuffer says otherwise.
const DefaultClaimBuffer = 4096

func defaultOptions() options {
	return options{logger: slog.Default(), claimBuffer: DefaultClaimBuffer}
}

func (o *options) fail(err error) { o.errs = append(o.errs, err) }

func (o *options) err() error { return errors.Join(o.errs...) }

// WithLogger sets the logger for fetch and group errors, claim lifecycle
// events and, unless the kgo options carry a kgo.WithLogger of their own,
// kgo's log lines (kgo's errors and warnings at the same slog levels, its
// info lines at Debug and its debug lines below Debug). The default is
// slog.Default(); nil is invalid.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l == nil {
			o.fail(invalid("WithLogger: nil logger"))
		}
		o.logger = l
	}
}

// WithClaimBuffer sets how many fetched records a claim may hold for the
// engine before the adapter stops fetching its partition (fetching resumes
// once half of them were handed over). It bounds what the adapter holds
// per partition when the engine does not read, on top of one fetch
// response (see the package documentation, "Memory"). The default is
// DefaultClaimBuffer (4096); n must be ≥ 1 (0 and negative values are
// invalid).
func WithClaimBuffer(n int) Option {
	return func(o *options) {
		if n < 1 {
			o.fail(invalid("WithClaimBuffer(%d): must be ≥ 1", n))
		}
		o.claimBuffer = n
	}
}

// groupConfig is what NewSource reads from the caller's kgo options.
type groupConfig struct {
	group         string
	topics        []string
	readCommitted bool
	ownLogger     bool // the options carry a kgo.WithLogger
}

// inspect reads and checks the group settings of kopts. kgo offers no way
// to read options but through a client, and a consumer-group client fills
// in its own group callbacks as it starts. So inspect builds a client with
// a context that is already cancelled (its goroutines stop at once, it
// never dials) and a kgo.HookNewClient, which kgo calls before it sets up
// consuming, reads the options there, and closes the client before
// returning. Hooks in kopts that implement kgo.HookNewClient or
// kgo.HookClientClosed see that short-lived client.
func inspect(kopts []kgo.Opt) (groupConfig, error) {
	for _, o := range kopts {
		if o == nil {
			return groupConfig{}, invalid("nil kgo.Opt")
		}
	}
	dead, cancel := context.WithCancel(context.Background())
	cancel()
	r := &optionReader{}
	cl, err := kgo.NewClient(append(slices.Clone(kopts), kgo.WithContext(dead), kgo.WithHooks(r))...)
	if err != nil {
		return groupConfig{}, invalid("kgo options: %w", err)
	}
	cl.Close()
	if !r.read {
		return groupConfig{}, invalid("kgo options could not be read")
	}
	if len(r.errs) > 0 {
		return groupConfig{}, errors.Join(r.errs...)
	}
	return r.g, nil
}

// optionReader reads and checks a client's options when kgo announces the
// client, before the client's consumer sets itself up.
type optionReader struct {
	read bool
	g    groupConfig
	errs []error
}

func (r *optionReader) fail(err error) { r.errs = append(r.errs, err) }

// OnNewClient implements kgo.HookNewClient.
func (r *optionReader) OnNewClient(cl *kgo.Client) {
	if r.read {
		return
	}
	r.read = true
	g := &r.g
	g.group, _ = cl.OptValue(kgo.ConsumerGroup).(string)
	if g.group == "" {
		r.fail(invalid("no consumer group: the kgo options need kgo.ConsumerGroup"))
	}
	g.topics, _ = cl.OptValue(kgo.ConsumeTopics).([]string)
	if len(g.topics) == 0 {
		r.fail(invalid("no topics: the kgo options need kgo.ConsumeTopics"))
	}
	if share, _ := cl.OptValue(kgo.ShareGroup).(string); share != "" {
		r.fail(invalid("kgo.ShareGroup: share groups have no offsets to commit"))
	}
	if ssb, _ := cl.OptValue(kgo.ServerSideBalancer).(bool); ssb {
		r.fail(invalid("kgo.ServerSideBalancer: KIP-848 groups are not supported yet"))
	}

	// Commits are orderly's: only the engine knows which offsets are done.
	if marks, _ := cl.OptValue(kgo.AutoCommitMarks).(bool); marks {
		r.fail(unsafeConfig("kgo.AutoCommitMarks: auto-commit is off, the engine commits"))
	}
	if greedy, _ := cl.OptValue(kgo.GreedyAutoCommit).(bool); greedy {
		r.fail(unsafeConfig("kgo.GreedyAutoCommit: auto-commit is off, the engine commits"))
	}
	if d, _ := cl.OptValue(kgo.AutoCommitInterval).(time.Duration); d != kgoDefaultAutoCommitInterval {
		r.fail(unsafeConfig("kgo.AutoCommitInterval(%v): auto-commit is off, the engine commits", d))
	}
	if !isNilFunc(cl.OptValue(kgo.AutoCommitCallback)) {
		r.fail(unsafeConfig("kgo.AutoCommitCallback: auto-commit is off, the engine commits"))
	}
	// The group callbacks are the adapter's: they grant and end claims.
	for _, cb := range []struct {
		name string
		opt  any
	}{
		{"OnPartitionsAssigned", kgo.OnPartitionsAssigned},
		{"OnPartitionsRevoked", kgo.OnPartitionsRevoked},
		{"OnPartitionsLost", kgo.OnPartitionsLost},
		{"OnOffsetsFetched", kgo.OnOffsetsFetched},
	} {
		if !isNilFunc(cl.OptValue(cb.opt)) {
			r.fail(unsafeConfig("kgo.%s: the adapter owns the group callbacks", cb.name))
		}
	}
	if !isNilFunc(cl.OptValue(kgo.AdjustFetchOffsetsFn)) {
		r.fail(unsafeConfig("kgo.AdjustFetchOffsetsFn: a claim starts at its committed position"))
	}
	if _, set := txnID(cl); set {
		r.fail(unsafeConfig("kgo.TransactionalID: orderly's commits are not part of a transaction"))
	}
	if keep, _ := cl.OptValue(kgo.KeepControlRecords).(bool); keep {
		r.fail(unsafeConfig("kgo.KeepControlRecords: transaction markers would reach handlers as records"))
	}
	if err := checkVersions(cl, fetchKey, minFetchVersion, "Fetch"); err != nil {
		r.fail(err)
	}
	level, _ := cl.OptValue(kgo.FetchIsolationLevel).(int8)
	g.readCommitted = level == 1
	g.ownLogger = cl.OptValue(kgo.WithLogger) != nil
}

// kgoDefaultAutoCommitInterval is kgo's default AutoCommitInterval: an
// option setting any other value asks for auto-commit.
const kgoDefaultAutoCommitInterval = 5 * time.Second

// Protocol keys and the first versions that carry record headers (Kafka
// 0.11, record batch v2).
const (
	produceKey        = 0
	fetchKey          = 1
	minProduceVersion = 3
	minFetchVersion   = 4
)

// checkVersions rejects a kgo.MaxVersions that caps key below min: kgo
// would fetch or produce without record headers and drop them silently.
func checkVersions(cl *kgo.Client, key, min int16, name string) error {
	vs, _ := cl.OptValue(kgo.MaxVersions).(*kversion.Versions)
	if vs == nil {
		return nil
	}
	if v, ok := vs.LookupMaxKeyVersion(key); !ok || v < min {
		return unsafeConfig("kgo.MaxVersions caps %s below v%d: record headers would be dropped", name, min)
	}
	return nil
}

func txnID(cl *kgo.Client) (string, bool) {
	vs := cl.OptValues(kgo.TransactionalID)
	if len(vs) < 2 {
		return "", false
	}
	id, _ := vs[0].(string)
	set, _ := vs[1].(bool)
	return id, set
}

// isNilFunc reports whether v, the value of an option that takes a
// function, is nil (OptValue returns the typed nil of an unset callback).
func isNilFunc(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.Func && rv.IsNil()
}
