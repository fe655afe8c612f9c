package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/memory"
	"github.com/orderly-go/orderly/inspect"
)

var screenshotTo = flag.String("screenshot", "", "TestInspectionPageInABrowser: also write the page's screenshot (PNG) to this file")

// lockedBuilder is a strings.Builder safe for a writer and a reader on
// other goroutines.
type lockedBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuilder) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuilder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// With -http and -hold, the demo serves the inspection while it holds the
// engine after the last record: state.json has every partition with its
// watermark, and the keys parked after poison events.
func TestDemoServesTheInspection(t *testing.T) {
	out := &lockedBuilder{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	go func() {
		ran <- run(ctx, options{source: "memory", records: 2000, partitions: 4, keys: 100, latency: 100 * time.Microsecond,
			mode: "key", concurrency: 32, producers: 8, poison: 0.02, quiet: true,
			httpAddr: "127.0.0.1:0", release: true, hold: time.Minute}, out)
	}()
	var base string
	addr := regexp.MustCompile(`inspection: (http://\S+/orderly/)`)
	require.Eventually(t, func() bool {
		if m := addr.FindStringSubmatch(out.String()); m != nil && strings.Contains(out.String(), "holding for 1m0s") {
			base = m[1]
			return true
		}
		return false
	}, time.Minute, 5*time.Millisecond, "the demo never held: %s", out)

	res, err := http.Get(base + "state.json")
	require.NoError(t, err)
	var s inspect.State
	require.NoError(t, json.NewDecoder(res.Body).Decode(&s))
	res.Body.Close()
	require.Len(t, s.Partitions, 4)
	parked := 0
	for _, p := range s.Partitions {
		require.Equal(t, "orders", p.Topic)
		require.Positive(t, p.Watermark, "every partition got events")
		require.Nil(t, p.Blocking, "every event is done")
		parked += p.Parked
	}
	require.Positive(t, parked, "orders with a poison event are parked")
	require.True(t, s.ReleaseEnabled)

	res, err = http.Get(base)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)

	cancel() // ends the hold
	require.NoError(t, <-ran, out.String())
	require.Contains(t, out.String(), "committed 2000 of 2000")
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// browser finds Chromium or Chrome; without one the test is skipped,
// unless it runs in CI (CI is set), where that is a failure.
func browser(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	const msg = "no Chromium or Chrome on PATH (the Debian package chromium; scripts/ensure-chromium installs it)"
	if os.Getenv("CI") != "" {
		t.Fatal(msg + ": CI is set, so the browser test may not be skipped")
	}
	t.Skip(msg + "; skipped outside CI")
	return ""
}

// A deliberately stuck order makes its partition's row stand out on the
// page, in a real headless Chromium, naming the blocking offset and key;
// the other rows say a record waits for its retry and a key is parked.
// The screenshot is the one the README shows (-screenshot writes it).
func TestInspectionPageInABrowser(t *testing.T) {
	exe := browser(t)
	log := memory.NewLog()
	require.NoError(t, log.CreateTopic(topic, 4))
	type ev struct {
		p   int32
		key string
	}
	var events []ev
	for i := range 40 {
		events = append(events, ev{int32(i % 4), fmt.Sprintf("order-%d", i)})
	}
	events = append(events, ev{1, "order-retry"}, ev{1, "order-retry"}, ev{3, "order-poison"}, ev{3, "order-poison"})
	for range 4 {
		events = append(events, ev{2, "order-stuck"})
	}
	for i := range 12 {
		events = append(events, ev{int32(i % 4), fmt.Sprintf("order-late-%d", i)})
	}
	stuckOffset := int64(-1)
	for _, e := range events {
		off, err := log.ProduceTo(topic, e.p, []byte(e.key), []byte(`{"amount": 42}`))
		require.NoError(t, err)
		if e.key == "order-stuck" && stuckOffset < 0 {
			stuckOffset = off
		}
	}

	gate := make(chan struct{})
	h := orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
		switch string(r.Key) {
		case "order-stuck":
			<-gate // stuck until the test ends, deaf to its context
		case "order-retry":
			return orderly.RetryAfter(errors.New("payment service unavailable"), time.Hour)
		case "order-poison":
			return orderly.Permanent(errors.New("order rejected by the payment service"))
		}
		return nil
	})
	eng, err := orderly.New(log.Member("order-service", []string{topic}), h,
		orderly.WithRetry(orderly.RetryPolicy{}), orderly.WithKeyBuffer(3, 0), orderly.WithAttemptTimeout(100*time.Millisecond),
		orderly.WithCommitInterval(50*time.Millisecond),
		orderly.WithDeadLetter(&memorySink{}), orderly.WithKeyParking(orderly.ParkUntilReleased),
		orderly.WithLogger(quietLog()))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- eng.Run(ctx) }()
	defer func() {
		close(gate)
		cancel()
		require.NoError(t, <-ran)
	}()

	mux, err := inspectionMux(eng, inspect.WithRelease(), inspect.WithStallAfter(200*time.Millisecond), inspect.WithRefresh(200*time.Millisecond))
	require.NoError(t, err)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	// Wait, on the engine's side, until the stuck partition is stalled and
	// the others show their retry and their parked key.
	require.Eventually(t, func() bool {
		in := eng.Inspect()
		if len(in.Partitions) != 4 {
			return false
		}
		p1, p2, p3 := in.Partitions[1], in.Partitions[2], in.Partitions[3]
		return p2.Blocking != nil && p2.Blocking.Offset == stuckOffset && p2.Blocking.Age > 300*time.Millisecond &&
			p1.Blocking != nil && p1.Blocking.State == orderly.RecordRetryWait && p3.Parked == 1 && p3.Blocking == nil &&
			in.Partitions[0].Blocking == nil && len(in.Stuck) == 1 &&
			in.Partitions[0].Committed == 13 && p1.Committed == p1.Watermark && p2.Committed == p2.Watermark
	}, 20*time.Second, 5*time.Millisecond)

	bctx, bcancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1440, 900))
	defer bcancel()
	bctx, bcancel2 := chromedp.NewContext(bctx)
	defer bcancel2()
	require.NoError(t, chromedp.Do(bctx, chromedp.Navigate(srv.URL+"/orderly/")), "starting the browser")
	tctx, tcancel := context.WithTimeout(bctx, 30*time.Second)
	defer tcancel()

	stalled := chromedp.CSS(`tr.partition.stalled[data-topic="orders"][data-partition="2"]`)
	require.NoError(t, chromedp.Do(tctx, chromedp.WaitVisible(stalled)))
	row, err := chromedp.Run(tctx, chromedp.Text(stalled))
	require.NoError(t, err)
	require.Contains(t, row, "STALLED")
	require.Contains(t, row, fmt.Sprintf("offset %d", stuckOffset))
	require.Contains(t, row, "order-stuck")
	require.Contains(t, row, "handler running")
	require.Contains(t, row, "2 queued behind it") // the key buffer (3) holds 3: the rest of the key spilled

	stuck, err := chromedp.Run(tctx, chromedp.Text(chromedp.CSS(`#stuck-section`), chromedp.NodeVisible))
	require.NoError(t, err)
	require.Contains(t, stuck, "orders / 2")
	require.Contains(t, stuck, "order-stuck")

	retry, err := chromedp.Run(tctx, chromedp.Text(chromedp.CSS(`tr.partition[data-partition="1"]`)))
	require.NoError(t, err)
	require.Contains(t, retry, "waiting to retry")
	require.Contains(t, retry, "payment service unavailable")
	parkedRow, err := chromedp.Run(tctx, chromedp.Text(chromedp.CSS(`tr.partition[data-partition="3"]`)))
	require.NoError(t, err)
	require.Contains(t, parkedRow, "order-poison")
	require.Contains(t, parkedRow, "release")
	stalledCount, err := chromedp.Run(tctx, chromedp.Text(chromedp.CSS(`#stalled-count`)))
	require.NoError(t, err)
	// The retrying partition is stalled too: its record waits an hour.
	require.Equal(t, "2 stalled", stalledCount)
	require.NoError(t, chromedp.Do(tctx, chromedp.WaitVisible(chromedp.CSS(`tr.partition.stalled[data-partition="1"]`))))
	require.NoError(t, chromedp.Do(tctx, chromedp.WaitNotPresent(chromedp.CSS(`tr.partition.stalled[data-partition="0"], tr.partition.stalled[data-partition="3"]`))))

	png, err := chromedp.Run(tctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	require.True(t, len(png) > 8 && string(png[1:4]) == "PNG", "a PNG image")
	require.NoError(t, os.WriteFile(filepath.Join(t.ArtifactDir(), "inspect.png"), png, 0o644))
	if *screenshotTo != "" {
		require.NoError(t, os.WriteFile(*screenshotTo, png, 0o644))
	}

	// The release button releases the parked key (a same-origin POST,
	// which the handler's cross-origin protection lets through).
	require.NoError(t, chromedp.Do(tctx, chromedp.Click(chromedp.CSS(`tr.partition[data-partition="3"] button`), chromedp.NodeVisible)))
	require.Eventually(t, func() bool { return eng.Inspect().Partitions[3].Parked == 0 }, 10*time.Second, 5*time.Millisecond)
	require.NoError(t, chromedp.Do(tctx, chromedp.WaitNotPresent(chromedp.CSS(`tr.partition[data-partition="3"] button`))))
}
