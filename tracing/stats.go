package tracing

import (
	"context"
	"errors"
	"strconv"

	"github.com/orderly-go/orderly"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// RegisterStats registers observable gauges read from an engine's Stats at
// each metric collection (pass eng.Stats):
//
//	orderly.engine.in_flight          handler calls running
//	orderly.engine.held.records       records held (dispatched, not finished)
//	orderly.engine.held.bytes         their bytes
//	orderly.partition.in_flight       per partition: handler calls running
//	orderly.partition.held.records    records dispatched and not finished
//	orderly.partition.uncommitted     records dispatched the watermark has not passed
//	orderly.partition.watermark       next offset to commit (when known)
//	orderly.partition.commit_lag      watermark - last committed offset (when both known)
//	orderly.partition.committed       last committed offset (when known)
//	orderly.partition.lag             end of the partition - committed offset: the group's consumer lag (when the claim knows the end)
//	orderly.partition.paused          1 when fetching is paused, else 0
//	orderly.partition.keys            live key actors
//
// Partition gauges carry messaging.destination.name and
// messaging.destination.partition.id. stats is called on the metric
// reader's goroutine; Engine.Stats is safe for that. Unregister the
// returned registration when the engine is gone.
func (h *Hooks) RegisterStats(stats func() orderly.Stats) (metric.Registration, error) {
	if stats == nil {
		return nil, errors.New("tracing: RegisterStats: nil stats function")
	}
	m := h.meter
	var errs []error
	gauge := func(name, unit, desc string) metric.Int64ObservableGauge {
		g, err := m.Int64ObservableGauge(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return g
	}
	engInFlight := gauge("orderly.engine.in_flight", "{call}", "Handler calls running now.")
	engRecords := gauge("orderly.engine.held.records", "{record}", "Records held by the engine: dispatched and not finished.")
	engBytes := gauge("orderly.engine.held.bytes", "By", "Bytes of the records held by the engine.")
	inFlight := gauge("orderly.partition.in_flight", "{call}", "Handler calls running now for the partition.")
	held := gauge("orderly.partition.held.records", "{record}", "Records of the partition dispatched and not finished.")
	uncommitted := gauge("orderly.partition.uncommitted", "{record}", "Records dispatched that the watermark has not passed.")
	watermark := gauge("orderly.partition.watermark", "{offset}", "Next offset to commit: the lowest unfinished offset.")
	lag := gauge("orderly.partition.commit_lag", "{offset}", "Watermark minus the last committed offset: progress not yet committed.")
	committed := gauge("orderly.partition.committed", "{offset}", "Last committed offset: the next record the group reads after a restart.")
	consumerLag := gauge("orderly.partition.lag", "{record}", "End of the partition minus the committed offset: records the group has not committed yet.")
	paused := gauge("orderly.partition.paused", "1", "1 when the partition's fetching is paused by backpressure.")
	keys := gauge("orderly.partition.keys", "{key}", "Live key actors of the partition.")
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		s := stats()
		o.ObserveInt64(engInFlight, s.InFlight)
		o.ObserveInt64(engRecords, s.HeldRecords)
		o.ObserveInt64(engBytes, s.HeldBytes)
		for _, p := range s.Partitions {
			set := metric.WithAttributes(
				semconv.MessagingSystemKafka,
				semconv.MessagingDestinationName(p.Topic),
				semconv.MessagingDestinationPartitionID(strconv.Itoa(int(p.Partition))),
			)
			o.ObserveInt64(inFlight, p.InFlight, set)
			o.ObserveInt64(held, p.HeldRecords, set)
			o.ObserveInt64(uncommitted, p.Uncommitted, set)
			o.ObserveInt64(keys, int64(p.Keys), set)
			if p.Watermark >= 0 {
				o.ObserveInt64(watermark, p.Watermark, set)
				if p.Committed >= 0 {
					o.ObserveInt64(lag, p.Watermark-p.Committed, set)
				}
			}
			if p.Committed >= 0 {
				o.ObserveInt64(committed, p.Committed, set)
			}
			if p.Lag >= 0 {
				o.ObserveInt64(consumerLag, p.Lag, set)
			}
			var pv int64
			if p.Paused {
				pv = 1
			}
			o.ObserveInt64(paused, pv, set)
		}
		return nil
	}, engInFlight, engRecords, engBytes, inFlight, held, uncommitted, watermark, lag, committed, consumerLag, paused, keys)
}
