package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var screenshotPath = flag.String("screenshot", "",
	"also write the browser test's screenshot here (screenshot.png beside this file is the README's); "+
		"the page then runs under load for a while first, so that its charts have a history")

// browserNames are the executables findBrowser looks for, in order.
var browserNames = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome", "headless-shell"}

// findBrowser returns the path of a Chromium or Chrome, or "".
func findBrowser() string {
	for _, name := range browserNames {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// The page in a real browser (headless Chromium): it connects to the
// service's stream, submits a paid and a free report through its form,
// shows both as sent, and shows per-plan figures that match the API's.
// A screenshot is saved.
func TestPageInBrowser(t *testing.T) {
	browser := findBrowser()
	if browser == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI is set and no browser was found (looked for %v): install the Debian package chromium (scripts/ensure-chromium)", browserNames)
		}
		t.Skipf("no browser found (looked for %v); install the Debian package chromium (scripts/ensure-chromium) to run this test", browserNames)
	}

	cfg := testConfig(t, newCluster(t))
	cfg.genMedian, cfg.genSpread, cfg.sendLatency = 150*time.Millisecond, 0.4, 20*time.Millisecond
	if *screenshotPath != "" {
		// More cron reports than two slots can take (2 / 0.7 s ≈ 170 a
		// minute): their queue and latency grow, paid and free stay fast.
		cfg.genMedian = 600 * time.Millisecond
	}
	s := startService(t, cfg)
	if *screenshotPath != "" {
		loadCtx, stopLoad := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { s.app.generateLoad(loadCtx, loadSpec{planCron: 300, planFree: 40, planPaid: 12}); close(done) }()
		t.Cleanup(func() { stopLoad(); <-done })
	}
	for i := range 10 { // a cron backlog, so that there is something to see
		s.submit(map[string]any{"user": fmt.Sprintf("nightly-%d", i+1), "plan": "cron", "kind": "activity"})
	}

	userData := t.TempDir()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(userData),
		chromedp.WindowSize(1280, 1000),
	)...)
	t.Cleanup(cancelAlloc) // runs before userData is removed
	bctx, cancelBrowser := chromedp.NewContext(allocCtx, chromedp.WithLogf(func(string, ...any) {}))
	t.Cleanup(cancelBrowser)
	ctx, cancel := context.WithTimeout(bctx, 2*waitLong)
	defer cancel()
	css := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }

	require.NoError(t, chromedp.Do(ctx,
		chromedp.EmulateViewport(1280, 1000),
		chromedp.Navigate(s.srv.URL+"/"),
		chromedp.WaitVisible(css(`#connection[data-state="live"]`)),
	), "the page loads and its stream connects")

	submitFromPage := func(user string, p plan) string {
		require.NoError(t, chromedp.Do(ctx,
			chromedp.RemoveAttribute(css("#submit-result"), "data-last-id"),
			chromedp.SetValue(css("#user"), user),
			chromedp.SetValue(css("#plan"), string(p)),
			chromedp.Click(css("#submit")),
		))
		id, err := chromedp.Run(ctx, chromedp.Poll[string](`document.querySelector("#submit-result").dataset.lastId`,
			chromedp.WithPollingTimeout(waitLong)))
		require.NoError(t, err, "the page shows the accepted id")
		require.NotEmpty(t, id)
		r := s.get(id) // the page's POST went through the API
		require.Equal(t, user, r.User)
		require.Equal(t, p, r.Plan)
		return id
	}
	paid := submitFromPage("ada (paid)", planPaid)
	free := submitFromPage("bob (free)", planFree)

	for _, id := range []string{paid, free} {
		require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(css(fmt.Sprintf(`tr[data-id=%q][data-state="sent"]`, id)))),
			"the page lists %s as sent", id)
	}
	// The per-plan figures refresh each second; wait until they count both.
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](`["paid", "free"].every(p =>
		Number(document.querySelector("#plan-" + p + " [data-field=sent]").textContent) >= 1)`,
		chromedp.WithPollingTimeout(waitLong)))
	require.NoError(t, err, "the page counts the sent paid and free reports")

	durationText := regexp.MustCompile(`^[0-9.]+ (ms|s)$`)
	doc, err := s.app.stats(context.Background())
	require.NoError(t, err)
	for _, ps := range doc.Plans {
		if ps.Plan == planCron || *screenshotPath != "" {
			continue // still moving: not comparable with a snapshot
		}
		field := func(name string) string {
			text, err := chromedp.Run(ctx, chromedp.TextContent(css(fmt.Sprintf("#plan-%s [data-field=%s]", ps.Plan, name))))
			require.NoError(t, err)
			return text
		}
		assert.Equal(t, strconv.Itoa(ps.Sent), field("sent"), ps.Plan)
		assert.Equal(t, "0", field("failed"), ps.Plan)
		assert.Regexp(t, durationText, field("p50"), "%s: p50 shown", ps.Plan)
		assert.Regexp(t, durationText, field("p95"), "%s: p95 shown", ps.Plan)
		wip, err := chromedp.Run(ctx, chromedp.AttributeValue(css(fmt.Sprintf("#plan-%s [data-field=wip]", ps.Plan)), "data-limit"))
		require.NoError(t, err)
		assert.Equal(t, strconv.Itoa(cfg.wipLimits[ps.Plan]), wip.Value, "%s: WIP limit shown", ps.Plan)
	}

	if *screenshotPath != "" {
		// Let the charts gather a minute of history under load.
		_, err := chromedp.Run(ctx, chromedp.Poll[bool](`series.latency.length >= 60`,
			chromedp.WithPollingInterval(time.Second), chromedp.WithPollingTimeout(2*time.Minute)))
		require.NoError(t, err)
	}
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	require.NoError(t, err)
	require.Greater(t, len(png), 10_000, "a screenshot of the page")
	out := filepath.Join(t.TempDir(), "screenshot.png")
	require.NoError(t, os.WriteFile(out, png, 0o644))
	t.Logf("screenshot: %s", out)
	if *screenshotPath != "" {
		require.NoError(t, os.WriteFile(*screenshotPath, png, 0o644))
		t.Logf("screenshot: %s", *screenshotPath)
	}
}
