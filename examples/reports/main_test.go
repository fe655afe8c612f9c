package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fastOptions are main's options with an embedded cluster on a free port
// and small latencies.
func fastOptions(t *testing.T, db string) options {
	cfg := defaultConfig()
	cfg.genMedian, cfg.sendLatency, cfg.flaky, cfg.poison = 5*time.Millisecond, time.Millisecond, 0, 0
	cfg.drainTimeout = 5 * time.Second
	cfg.log = testLogger(t)
	return options{addr: "127.0.0.1:0", partitions: 2, db: db, secret: "s", cfg: cfg}
}

// startRun runs main's run in the background; it returns the page's URL
// and a function that stops the run and returns its error and output.
func startRun(t *testing.T, o options) (string, func() (string, error)) {
	ctx, cancel := context.WithCancel(context.Background())
	urls := make(chan string, 1)
	done := make(chan error, 1)
	var out strings.Builder
	go func() { done <- run(ctx, o, &out, func(u string) { urls <- u }) }()
	select {
	case u := <-urls:
		return u, func() (string, error) { cancel(); err := <-done; return out.String(), err }
	case err := <-done:
		cancel()
		t.Fatalf("run ended before it served: %v\n%s", err, out.String())
	case <-time.After(waitLong):
		cancel()
		t.Fatal("run did not serve within the wait")
	}
	return "", nil
}

func getBody(t *testing.T, url string) (*http.Response, string) {
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

func getStats(t *testing.T, base string) statsDoc {
	_, body := getBody(t, base+"stats")
	var doc statsDoc
	require.NoError(t, json.Unmarshal([]byte(body), &doc))
	return doc
}

// What `go run ./examples/reports` does: an embedded cluster, the
// service, the page and its assets, the load generator; then a clean stop.
func TestRunServesThePage(t *testing.T) {
	o := fastOptions(t, filepath.Join(t.TempDir(), "reports.db"))
	o.load = "paid=3000" // 50 a second
	url, stop := startRun(t, o)

	resp, page := getBody(t, url)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, resp.Header.Get("Content-Type"), "text/html")
	assert.Contains(t, page, "<title>Reports")
	for _, asset := range []string{"static/app.js", "static/style.css"} {
		resp, body := getBody(t, url+asset)
		assert.Equal(t, http.StatusOK, resp.StatusCode, asset)
		assert.NotEmpty(t, body, asset)
		assert.Contains(t, page, "/"+asset, "the page uses %s", asset)
	}
	require.Eventually(t, func() bool { return getStats(t, url).Plans[0].Sent >= 3 }, waitLong, 10*time.Millisecond,
		"the load generator's paid reports are sent")

	out, err := stop()
	require.NoError(t, err, out)
	assert.Contains(t, out, "open http://127.0.0.1:")
	assert.Contains(t, out, "load: paid=3000 per minute")
}

// The embedded cluster does not outlive the program, but the database
// does (-db): started again on it, the service resumes the reports left
// unfinished, and each reaches a terminal state once.
func TestRunResumesOnTheSameDatabase(t *testing.T) {
	db := filepath.Join(t.TempDir(), "reports.db")
	o := fastOptions(t, db)
	o.cfg.genMedian = 20 * time.Millisecond
	o.cfg.wipLimits = map[plan]int{planPaid: 1, planFree: 1, planCron: 1}
	o.load = "cron=6000"
	url, stop := startRun(t, o)
	require.Eventually(t, func() bool {
		c := getStats(t, url).Plans[2]
		return c.Sent >= 2 && c.Waiting >= 10
	}, waitLong, 10*time.Millisecond, "a cron backlog")
	out, err := stop()
	require.NoError(t, err, out)

	st, err := openStore(db)
	require.NoError(t, err)
	before, err := st.unfinished(context.Background())
	require.NoError(t, err)
	var total int
	require.NoError(t, st.db.QueryRow(`SELECT COUNT(*) FROM reports`).Scan(&total))
	require.NoError(t, st.close())
	require.NotEmpty(t, before)

	o.load = ""
	url, stop = startRun(t, o)
	require.Eventually(t, func() bool {
		doc := getStats(t, url)
		n := 0
		for _, p := range doc.Plans {
			n += p.Total[stateSent] + p.Total[stateFailed]
		}
		return n == total
	}, waitLong, 10*time.Millisecond, "all %d reports finished", total)
	out, err = stop()
	require.NoError(t, err, out)
	assert.Contains(t, out, "resumed ")

	st, err = openStore(db)
	require.NoError(t, err)
	defer st.close()
	var stored, histories int
	require.NoError(t, st.db.QueryRow(`SELECT COUNT(*) FROM reports`).Scan(&stored))
	require.NoError(t, st.db.QueryRow(`SELECT COUNT(*) FROM history WHERE state IN ('sent', 'failed')`).Scan(&histories))
	assert.Equal(t, total, stored, "no report lost or added")
	assert.Equal(t, total, histories, "one terminal state each")
}

// Bad options are refused with an error, before anything is served.
func TestRunRejectsBadOptions(t *testing.T) {
	for name, change := range map[string]func(*options){
		"load":       func(o *options) { o.load = "gold=5" },
		"partitions": func(o *options) { o.partitions = 0 },
		"wip":        func(o *options) { o.cfg.wipLimits = map[plan]int{planPaid: 0, planFree: 1, planCron: 1} },
		"flaky":      func(o *options) { o.cfg.flaky = 2 },
		"workers":    func(o *options) { o.cfg.workers = 0 },
		"address":    func(o *options) { o.addr = "127.0.0.1:99999" },
	} {
		o := fastOptions(t, filepath.Join(t.TempDir(), "reports.db"))
		change(&o)
		served := false
		err := run(context.Background(), o, io.Discard, func(string) { served = true })
		assert.Error(t, err, name)
		assert.False(t, served, name)
	}
}
