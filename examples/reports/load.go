package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// loadSpec is -load: reports per minute, per plan.
type loadSpec map[plan]float64

// parseLoad reads "cron=200,free=50,paid=10" (reports per minute; plans
// left out get none). An empty string is no load.
func parseLoad(s string) (loadSpec, error) {
	spec := loadSpec{}
	if strings.TrimSpace(s) == "" {
		return spec, nil
	}
	for _, part := range strings.Split(s, ",") {
		name, rate, ok := strings.Cut(strings.TrimSpace(part), "=")
		p := plan(strings.TrimSpace(name))
		if !ok || !p.valid() {
			return nil, fmt.Errorf("-load: %q is not plan=reports-per-minute (plans: paid, free, cron)", part)
		}
		r, err := strconv.ParseFloat(strings.TrimSpace(rate), 64)
		if err != nil || r < 0 || r > 60000 {
			return nil, fmt.Errorf("-load: the rate of %s must be a number in [0, 60000] per minute", p)
		}
		if _, dup := spec[p]; dup {
			return nil, fmt.Errorf("-load: %s given twice", p)
		}
		spec[p] = r
	}
	return spec, nil
}

func (l loadSpec) String() string {
	var parts []string
	for _, p := range plans {
		if r := l[p]; r > 0 {
			parts = append(parts, fmt.Sprintf("%s=%g", p, r))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ",") + " per minute"
}

// generateLoad submits reports at the spec's rates (Poisson arrivals:
// exponential gaps) through the same path as POST /reports, until ctx is
// done.
func (a *app) generateLoad(ctx context.Context, spec loadSpec) {
	done := make(chan struct{})
	n := 0
	for _, p := range plans {
		rate := spec[p]
		if rate <= 0 {
			continue
		}
		n++
		go func() {
			defer func() { done <- struct{}{} }()
			mean := time.Duration(float64(time.Minute) / rate)
			for i := 1; ; i++ {
				if sleep(ctx, time.Duration(rand.ExpFloat64()*float64(mean))) != nil {
					return
				}
				req := request{
					User: fmt.Sprintf("%s-user-%d", p, rand.IntN(50)),
					Plan: p,
					Kind: kinds[rand.IntN(len(kinds))],
				}
				if p == planCron {
					req.User = fmt.Sprintf("cron-job-%d", i)
				}
				if _, _, err := a.submit(ctx, req); err != nil && !errors.Is(err, context.Canceled) {
					a.log.Warn("load: submit", slog.String("plan", string(p)), slog.Any("error", err))
				}
			}
		}()
	}
	for range n {
		<-done
	}
}
