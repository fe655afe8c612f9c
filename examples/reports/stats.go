package main

import (
	"context"
	"slices"
	"time"
)

// planStats is one plan's figures, as GET /stats and the page show them.
type planStats struct {
	Plan     plan   `json:"plan"`
	Priority int    `json:"priority"`
	Topic    string `json:"topic"`
	// Waiting is the queue depth: reports accepted or queued, not started.
	Waiting int      `json:"waiting"`
	WIP     wipUsage `json:"wip"`
	// Over the window (reports finished in the last WindowSeconds):
	Sent      int     `json:"sent"`
	Failed    int     `json:"failed"`
	PerMinute float64 `json:"per_minute"` // finished per minute: λ of Little's law
	P50Ms     float64 `json:"p50_ms"`     // accepted → sent, median
	P95Ms     float64 `json:"p95_ms"`     // accepted → sent, 95th percentile
	// HoldMs is the mean time a report held its WIP slot, started →
	// finished: W of Little's law. PerMinute/60 × HoldMs/1000 is the mean
	// number of slots in use (L).
	HoldMs float64 `json:"hold_ms"`
	// Total counts every report of the plan in the store, by state.
	Total map[state]int `json:"total"`
}

// statsDoc is GET /stats.
type statsDoc struct {
	At            time.Time   `json:"at"`
	WindowSeconds float64     `json:"window_seconds"`
	Plans         []planStats `json:"plans"`
}

func (a *app) stats(ctx context.Context) (statsDoc, error) {
	now := time.Now()
	doc := statsDoc{At: now.UTC(), WindowSeconds: a.cfg.statsWindow.Seconds()}
	counts, err := a.store.countByState(ctx)
	if err != nil {
		return doc, err
	}
	finished, err := a.store.finishedSince(ctx, now.Add(-a.cfg.statsWindow))
	if err != nil {
		return doc, err
	}
	usage := a.wip.usage()
	for _, p := range plans {
		ps := planStats{Plan: p, Priority: p.priority(), Topic: p.topic(), WIP: usage[p], Total: map[state]int{}}
		for _, st := range states {
			ps.Total[st] = counts[p][st]
		}
		ps.Waiting = ps.Total[stateAccepted] + ps.Total[stateQueued]
		var latencies []time.Duration
		var hold time.Duration
		for _, f := range finished {
			if f.plan != p {
				continue
			}
			hold += f.finished.Sub(f.started)
			if f.state == stateSent {
				ps.Sent++
				latencies = append(latencies, f.finished.Sub(f.accepted))
			} else {
				ps.Failed++
			}
		}
		if n := ps.Sent + ps.Failed; n > 0 {
			ps.HoldMs = ms(hold / time.Duration(n))
			// Per minute of the window, or of the time since the service
			// started if that is shorter.
			span := max(min(a.cfg.statsWindow, now.Sub(a.startedAt)), time.Second)
			ps.PerMinute = float64(n) / span.Minutes()
		}
		ps.P50Ms, ps.P95Ms = ms(quantile(latencies, 0.50)), ms(quantile(latencies, 0.95))
		doc.Plans = append(doc.Plans, ps)
	}
	return doc, nil
}

// quantile is the q-quantile of ds (nearest rank), 0 for none.
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := int(q*float64(len(ds))+0.999999) - 1
	return ds[max(0, min(i, len(ds)-1))]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
