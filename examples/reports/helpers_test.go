package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
)

// Bounds of the event-based waits: generous, since the suite runs under
// -race on two shared cores. A wait returns as soon as its condition holds.
const (
	waitLong = 60 * time.Second
	waitTick = 5 * time.Millisecond
)

// newCluster starts an embedded cluster that lives until the test ends.
func newCluster(t *testing.T) *kfake.Cluster {
	t.Helper()
	c, err := startEmbeddedCluster(2)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

// testConfig is a service on cluster with a database in the test's
// directory, small latencies, no injected failures and short backoffs.
func testConfig(t *testing.T, cluster *kfake.Cluster) config {
	cfg := defaultConfig()
	cfg.brokers, cfg.fastKafka = cluster.ListenAddrs(), true
	cfg.dbPath = filepath.Join(t.TempDir(), "reports.db")
	cfg.genMedian, cfg.genSpread, cfg.sendLatency = 3*time.Millisecond, 0.3, time.Millisecond
	cfg.flaky, cfg.poison = 0, 0
	cfg.retryDelay, cfg.webhookDelay, cfg.webhookTimeout = 10*time.Millisecond, 10*time.Millisecond, 5*time.Second
	cfg.drainTimeout = 5 * time.Second
	cfg.webhookSecret = []byte("test-secret")
	cfg.log = testLogger(t)
	return cfg
}

// testLogger keeps the log in memory and prints it if the test failed
// (a goroutine may still log after the test returned; t.Log would panic).
func testLogger(t *testing.T) *slog.Logger {
	var mu sync.Mutex
	var buf bytes.Buffer
	t.Cleanup(func() {
		if t.Failed() {
			mu.Lock()
			defer mu.Unlock()
			t.Logf("service log:\n%s", buf.String())
		}
	})
	return slog.New(slog.NewTextHandler(lockedWriter{&mu, &buf}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// testService is a running service with its API on an httptest server.
type testService struct {
	t      *testing.T
	app    *app
	srv    *httptest.Server
	cancel context.CancelFunc
	ran    chan error
	once   *sync.Once
}

// startService starts cfg's service and waits until every step joined its
// group. It stops when the test ends, if not before.
func startService(t *testing.T, cfg config) *testService {
	t.Helper()
	a, err := newApp(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	s := &testService{t: t, app: a, srv: httptest.NewServer(a.handler()), cancel: cancel, ran: make(chan error, 1), once: new(sync.Once)}
	go func() { s.ran <- a.run(ctx) }()
	t.Cleanup(s.stop)
	require.Eventually(t, a.ready, waitLong, waitTick, "every step joins its group")
	return s
}

// stop shuts the service down as main does: streams and slot waits end,
// the API closes, the steps drain and commit.
func (s *testService) stop() {
	s.once.Do(func() {
		s.app.beginStop()
		s.srv.Close()
		s.cancel()
		require.NoError(s.t, <-s.ran)
		s.app.close()
	})
}

// post POSTs body as JSON to /reports and returns the response and its
// decoded JSON body.
func (s *testService) post(body any) (*http.Response, map[string]any) {
	s.t.Helper()
	data, err := json.Marshal(body)
	require.NoError(s.t, err)
	return s.do(http.MethodPost, "/reports", "application/json", data)
}

func (s *testService) do(method, path, contentType string, body []byte) (*http.Response, map[string]any) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.srv.URL+path, bytes.NewReader(body))
	require.NoError(s.t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := s.srv.Client().Do(req)
	require.NoError(s.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(s.t, err)
	var out map[string]any
	if len(raw) > 0 {
		require.NoError(s.t, json.Unmarshal(raw, &out), "a JSON body: %s", raw)
	}
	return resp, out
}

// submit POSTs a report and requires a 202; it returns the id.
func (s *testService) submit(body map[string]any) string {
	s.t.Helper()
	resp, out := s.post(body)
	require.Equal(s.t, http.StatusAccepted, resp.StatusCode, "%v", out)
	id, _ := out["id"].(string)
	require.NotEmpty(s.t, id)
	return id
}

// get returns report id through the API.
func (s *testService) get(id string) report {
	s.t.Helper()
	resp, err := s.srv.Client().Get(s.srv.URL + "/reports/" + id)
	require.NoError(s.t, err)
	defer resp.Body.Close()
	require.Equal(s.t, http.StatusOK, resp.StatusCode)
	var r report
	require.NoError(s.t, json.NewDecoder(resp.Body).Decode(&r))
	return r
}

// waitTerminal polls GET /reports/{id} until the report is sent or failed.
func (s *testService) waitTerminal(id string) report {
	s.t.Helper()
	var r report
	require.Eventually(s.t, func() bool {
		r = s.get(id)
		return r.terminal()
	}, waitLong, waitTick, "report %s reaches a terminal state", id)
	return r
}

// sseEvent is one event of a stream.
type sseEvent struct {
	name, id string
	data     []byte
}

// readSSE reads events from r until it ends, calling each for every one;
// each returns false to stop reading.
func readSSE(r io.Reader, each func(sseEvent) bool) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	var ev sseEvent
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if ev.name != "" || ev.data != nil {
				if !each(ev) {
					return nil
				}
			}
			ev = sseEvent{}
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "event: "):
			ev.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "id: "):
			ev.id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "data: "):
			ev.data = append(ev.data, strings.TrimPrefix(line, "data: ")...)
		}
	}
	return sc.Err()
}

// historyStates is the states of r's history, in order.
func historyStates(r report) []state {
	var out []state
	for _, c := range r.History {
		out = append(out, c.State)
	}
	return out
}

var happyPath = []state{stateAccepted, stateQueued, stateGenerating, stateSending, stateSent}

// maxOverlap is the most reports of the list that held a WIP slot at the
// same moment, by their histories: from generating to their terminal state.
func maxOverlap(reps []report) int {
	type edge struct {
		at    time.Time
		delta int
	}
	var edges []edge
	for _, r := range reps {
		var start, end time.Time
		for _, c := range r.History {
			switch {
			case c.State == stateGenerating:
				start = c.At
			case c.State.terminal():
				end = c.At
			}
		}
		if !start.IsZero() {
			edges = append(edges, edge{start, +1})
			if !end.IsZero() {
				edges = append(edges, edge{end, -1})
			}
		}
	}
	// Ends before starts at the same instant: a slot is released before it
	// is taken again.
	slices.SortFunc(edges, func(a, b edge) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return a.delta - b.delta
	})
	n, most := 0, 0
	for _, e := range edges {
		n += e.delta
		most = max(most, n)
	}
	return most
}
