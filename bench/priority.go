package main

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/memory"
)

// The priority-flood scenario: a P3 (cron) backlog floods the engine;
// then a burst of P1 (paid) records arrives. Each level is a topic, as a
// service would lay it out; P2 (free) is configured and idle.
const (
	floodPartitions  = 4
	floodP1          = 500
	floodKeys        = 1000 // keys of the P3 backlog; P1 records have a key each
	floodHandler     = 2 * time.Millisecond
	floodConcurrency = 8
	floodSettle      = 250 * time.Millisecond // from the first handler start to the P1 burst
)

var floodTopics = [...]string{"reports.paid", "reports.free", "reports.cron"}

// floodLevels is the seed design: WIP 8 for P1, 4 for P2, 2 for P3; P1
// has a quarter of the slots reserved; P3 is guaranteed a tenth of the
// starts while the higher levels flood.
var floodLevels = []orderly.PriorityLevel{
	{WIP: 8, Reserved: 0.25},
	{WIP: 4},
	{WIP: 2, MinShare: 0.1},
}

// LittleRow is Little's law for one level over the P1 window: L measured
// (the time-average of handler calls in flight, from their start and end
// times), λ (calls started per second), W (their mean duration), and λW;
// stats_l is L as the engine's Stats.Levels reported it, sampled every
// millisecond (priority mode only).
type LittleRow struct {
	Level   string  `json:"level"`
	L       float64 `json:"l"`
	Lambda  float64 `json:"lambda_per_s"`
	WMs     float64 `json:"w_ms"`
	LambdaW float64 `json:"lambda_w"`
	StatsL  float64 `json:"stats_l,omitempty"`
	WIP     int     `json:"wip,omitempty"`
}

func ptr(v float64) *float64 { return &v }

func runPriorityFlood(o *options, out *printer) error {
	n := o.recordsOr(10000)
	conc := floodConcurrency
	if o.concurrencySet {
		conc = o.concurrency
	}
	if o.p1Rate < 0 {
		return fmt.Errorf("-p1-rate %v: must be ≥ 0", o.p1Rate)
	}
	var little [][]LittleRow
	for _, mode := range []string{"priority", "fifo"} {
		r, err := floodRun(o, n, conc, mode)
		if err != nil {
			return fmt.Errorf("priority-flood %s: %w", mode, err)
		}
		little = append(little, r.Little)
		out.add(r)
	}
	burst := "all at once"
	if o.p1Rate > 0 {
		burst = fmt.Sprintf("at %.0f/s", o.p1Rate)
	}
	out.flush(fmt.Sprintf("priority-flood: %d-record P3 backlog, then %d P1 records %s; handler sleeps %v; concurrency %d; %d partitions per topic; P1 latency = produce → handler start",
		n, floodP1, burst, floodHandler, conc, floodPartitions))
	if !o.json {
		for i, mode := range []string{"priority", "fifo"} {
			fmt.Fprintf(out.w, "Little's law over the P1 window, %s: ", mode)
			for _, l := range little[i] {
				fmt.Fprintf(out.w, "%s L=%.2f λW=%.2f (λ=%.0f/s W=%.2f ms", l.Level, l.L, l.LambdaW, l.Lambda, l.WMs)
				if l.StatsL > 0 {
					fmt.Fprintf(out.w, ", Stats L=%.2f", l.StatsL)
				}
				if l.WIP > 0 {
					fmt.Fprintf(out.w, ", WIP %d", l.WIP)
				}
				fmt.Fprint(out.w, ")  ")
			}
			fmt.Fprintln(out.w)
		}
	}
	return nil
}

func floodRun(o *options, n, conc int, mode string) (Result, error) {
	log := memory.NewLog()
	for _, t := range floodTopics {
		if err := log.CreateTopic(t, floodPartitions); err != nil {
			return Result{}, err
		}
	}
	for i := range n {
		if _, _, err := log.Produce(floodTopics[2], []byte("c"+strconv.Itoa(i%floodKeys)), indexValue(i)); err != nil {
			return Result{}, err
		}
	}
	total := n + floodP1
	var (
		t0       time.Time
		produced = make([]int64, total) // ns since t0; P1 only
		started  = make([]int64, total)
		ended    = make([]int64, total)
		first    = make(chan struct{})
		once     sync.Once
		p1Done   atomic.Int64
		allP1    = make(chan struct{})
	)
	h := orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
		i := valueIndex(r)
		started[i] = int64(time.Since(t0))
		once.Do(func() { close(first) })
		time.Sleep(floodHandler)
		ended[i] = int64(time.Since(t0))
		if i >= n && p1Done.Add(1) == floodP1 {
			close(allP1)
		}
		return nil
	})
	opts := []orderly.Option{orderly.WithLogger(quietLogger), orderly.WithOrdering(orderly.ByKey()), orderly.WithMaxConcurrency(conc)}
	if mode == "priority" {
		opts = append(opts, orderly.WithPriorities(orderly.PriorityByTopic(map[string]int{
			floodTopics[0]: 0, floodTopics[1]: 1, floodTopics[2]: 2}), floodLevels...))
	}
	eng, err := orderly.New(log.Member("bench", floodTopics[:]), h, opts...)
	if err != nil {
		return Result{}, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	t0 = time.Now()
	go func() { ran <- eng.Run(ctx) }()
	timeout := time.After(o.timeout)
	select {
	case <-first:
	case err := <-ran:
		return Result{}, fmt.Errorf("Run returned before the first handler call: %v", err)
	case <-timeout:
		return Result{}, fmt.Errorf("%w: no handler call", errStalled)
	}
	time.Sleep(floodSettle)

	// Sample Stats.Levels' in-flight counts while the burst lasts.
	var (
		sampleMu   sync.Mutex
		sampleSum  []float64
		samples    int
		stopSample = make(chan struct{})
		sampled    = make(chan struct{})
	)
	go func() {
		defer close(sampled)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopSample:
				return
			case <-tick.C:
			}
			lv := eng.Stats().Levels
			sampleMu.Lock()
			if sampleSum == nil {
				sampleSum = make([]float64, len(lv))
			}
			for i, l := range lv {
				sampleSum[i] += float64(l.InFlight)
			}
			samples++
			sampleMu.Unlock()
		}
	}()

	burst := time.Since(t0)
	for i := range floodP1 {
		if o.p1Rate > 0 {
			at := burst + time.Duration(float64(i)/o.p1Rate*float64(time.Second))
			if d := at - time.Since(t0); d > 0 {
				time.Sleep(d)
			}
		}
		produced[n+i] = int64(time.Since(t0))
		if _, _, err := log.Produce(floodTopics[0], []byte("p"+strconv.Itoa(i)), indexValue(n+i)); err != nil {
			return Result{}, err
		}
	}
	select {
	case <-allP1:
	case err := <-ran:
		return Result{}, fmt.Errorf("Run returned before every P1 record was handled: %v", err)
	case <-timeout:
		cancel()
		<-ran
		return Result{}, fmt.Errorf("%w: %d of %d P1 records handled", errStalled, p1Done.Load(), floodP1)
	}
	close(stopSample)
	<-sampled
	cancel()
	if err := <-ran; err != nil {
		return Result{}, err
	}

	// P1 latency: produce → handler start.
	lat := make([]float64, 0, floodP1)
	var lastP1Start, lastP1End int64
	for i := n; i < total; i++ {
		lat = append(lat, float64(started[i]-produced[i])/1e6)
		lastP1Start = max(lastP1Start, started[i])
		lastP1End = max(lastP1End, ended[i])
	}
	slices.Sort(lat)
	pct := func(p float64) float64 { return lat[int(math.Ceil(p*float64(len(lat))))-1] }

	var sum float64
	var calls int
	var p1Starts, p3Starts int
	from := int64(burst)
	for i := range total {
		if started[i] == 0 || ended[i] == 0 {
			continue // not run (P3 left when the run stopped) or cut off
		}
		sum += float64(ended[i] - started[i])
		calls++
		if started[i] >= from && started[i] <= lastP1Start {
			if i < n {
				p3Starts++
			} else {
				p1Starts++
			}
		}
	}
	handlerMs := sum / float64(calls) / 1e6

	// The starvation bound, checked on the starts themselves: the longest
	// run of P1 starts between two P3 starts in the window.
	type start struct {
		at int64
		p3 bool
	}
	var seq []start
	for i := range total {
		if started[i] >= from && started[i] <= lastP1Start {
			seq = append(seq, start{started[i], i < n})
		}
	}
	slices.SortFunc(seq, func(a, b start) int { return cmp.Compare(a.at, b.at) })
	maxGap, gap, seenP3 := 0, 0, false
	for _, s := range seq {
		if s.p3 {
			if seenP3 {
				maxGap = max(maxGap, gap)
			}
			seenP3, gap = true, 0
		} else {
			gap++
		}
	}

	// Little's law per level over [burst, last P1 end].
	window := float64(lastP1End - from)
	row := func(name string, lo, hi, level int) LittleRow {
		var busy, dur float64
		var count int
		for i := lo; i < hi; i++ {
			s, e := started[i], ended[i]
			if s == 0 {
				continue
			}
			if e == 0 {
				e = lastP1End // still running when the run stopped
			}
			if ov := float64(min(e, lastP1End) - max(s, from)); ov > 0 {
				busy += ov
			}
			if s >= from && s < lastP1End {
				count++
				dur += float64(e - s)
			}
		}
		r := LittleRow{Level: name, L: busy / window, Lambda: float64(count) / (window / 1e9)}
		if count > 0 {
			r.WMs = dur / float64(count) / 1e6
		}
		r.LambdaW = r.Lambda * r.WMs / 1e3
		if mode == "priority" {
			sampleMu.Lock()
			if samples > 0 {
				r.StatsL = sampleSum[level] / float64(samples)
			}
			sampleMu.Unlock()
			r.WIP = floodLevels[level].WIP
		}
		return r
	}
	res := Result{
		Scenario: "priority-flood", Mode: mode, Keys: floodKeys + floodP1, Partitions: floodPartitions,
		Records: total, Concurrency: conc, Seconds: time.Duration(lastP1End).Seconds(),
		P1P50Ms: ptr(pct(0.50)), P1P99Ms: ptr(pct(0.99)), HandlerMs: ptr(handlerMs),
		P3Share: ptr(float64(p3Starts) / float64(p3Starts+p1Starts)), P1Rate: ptr(o.p1Rate),
		Little: []LittleRow{row("P1", n, total, 0), row("P3", 0, n, 2)},
	}
	if mode == "priority" {
		res.P3MaxGap = &maxGap
		res.P3MinShare = ptr(floodLevels[2].MinShare)
		bound := floodLevels[2].StarvationBound(1)
		res.P3GapBound = &bound
	}
	target := "met"
	if *res.P1P99Ms > 2**res.HandlerMs {
		target = "not met"
	}
	res.Note = fmt.Sprintf("p99 ≤ 2×handler: %s", target)
	return res, nil
}
