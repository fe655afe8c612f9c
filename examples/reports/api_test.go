package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The API tests share one service: each works on its own reports.
func TestAPI(t *testing.T) {
	s := startService(t, testConfig(t, newCluster(t)))

	// A POST is answered 202 with the id and a Location; polling that
	// Location shows the report move through every state to sent.
	t.Run("accepted then polled to sent", func(t *testing.T) {
		s := s.on(t)
		resp, out := s.post(map[string]any{"user": "ada", "plan": "paid", "kind": "usage"})
		require.Equal(t, http.StatusAccepted, resp.StatusCode, "%v", out)
		id := out["id"].(string)
		assert.Equal(t, "/reports/"+id, resp.Header.Get("Location"))
		assert.Equal(t, resp.Header.Get("Location"), out["status_url"])
		assert.Equal(t, "/reports/"+id+"/events", out["events_url"])
		assert.Equal(t, false, out["replayed"])

		// The 202 came after the request was stored: it is there at once.
		first := s.get(id)
		assert.Equal(t, "ada", first.User)
		assert.Equal(t, planPaid, first.Plan)
		assert.Equal(t, 0, first.Priority, "paid is orderly's highest priority level, 0")

		r := s.waitTerminal(id)
		assert.Equal(t, stateSent, r.State)
		assert.Equal(t, happyPath, historyStates(r))
		assert.Equal(t, 1, r.Attempts)
		for i := 1; i < len(r.History); i++ {
			assert.False(t, r.History[i].At.Before(r.History[i-1].At), "timestamps in order")
			assert.Greater(t, r.History[i].Seq, r.History[i-1].Seq)
		}
		assert.Nil(t, r.Webhook)
	})

	// The SSE stream, opened right after the POST, delivers every state
	// in order and ends at the terminal one; resuming with Last-Event-ID
	// delivers only what came after.
	t.Run("events stream every state in order", func(t *testing.T) {
		s := s.on(t)
		id := s.submit(map[string]any{"user": "bea", "plan": "free", "kind": "audit"})
		resp, err := s.srv.Client().Get(s.srv.URL + "/reports/" + id + "/events")
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
		var got []change
		var ids []string
		require.NoError(t, readSSE(resp.Body, func(ev sseEvent) bool {
			require.Equal(t, "status", ev.name)
			var c change
			require.NoError(t, json.Unmarshal(ev.data, &c))
			require.Equal(t, id, c.ReportID)
			require.Equal(t, strconv.FormatInt(c.Seq, 10), ev.id)
			got, ids = append(got, c), append(ids, ev.id)
			return true
		}), "the stream ends by itself after the terminal state")
		states := make([]state, len(got))
		for i, c := range got {
			states[i] = c.State
		}
		require.Equal(t, happyPath, states)

		req, err := http.NewRequest(http.MethodGet, s.srv.URL+"/reports/"+id+"/events", nil)
		require.NoError(t, err)
		req.Header.Set("Last-Event-ID", ids[2]) // after generating
		resp2, err := s.srv.Client().Do(req)
		require.NoError(t, err)
		defer resp2.Body.Close()
		var resumed []state
		require.NoError(t, readSSE(resp2.Body, func(ev sseEvent) bool {
			var c change
			require.NoError(t, json.Unmarshal(ev.data, &c))
			resumed = append(resumed, c.State)
			return true
		}))
		require.Equal(t, []state{stateSending, stateSent}, resumed)
	})

	// The same client id, posted again (also concurrently), returns the
	// same report: one report, each state once, generated once. The id
	// with another request is a conflict.
	t.Run("idempotent resubmission", func(t *testing.T) {
		s := s.on(t)
		body := map[string]any{"id": "client-42", "user": "cy", "plan": "cron", "kind": "billing"}
		const n = 8
		var wg sync.WaitGroup
		var mu sync.Mutex
		replayed := 0
		for range n {
			wg.Go(func() {
				resp, out := s.post(body)
				assert.Equal(t, http.StatusAccepted, resp.StatusCode, "%v", out)
				assert.Equal(t, "client-42", out["id"])
				assert.Equal(t, "/reports/client-42", resp.Header.Get("Location"))
				mu.Lock()
				defer mu.Unlock()
				if out["replayed"] == true {
					replayed++
					assert.Equal(t, "true", resp.Header.Get("Idempotent-Replayed"))
				}
			})
		}
		wg.Wait()
		assert.Equal(t, n-1, replayed, "exactly one POST created the report")
		r := s.waitTerminal("client-42")
		assert.Equal(t, happyPath, historyStates(r), "each state once")
		assert.Equal(t, 1, r.Attempts, "generated once")

		resp, out := s.post(body)
		require.Equal(t, http.StatusAccepted, resp.StatusCode)
		assert.Equal(t, "sent", out["state"], "a repeat after the fact returns the report as it is")

		resp, out = s.post(map[string]any{"id": "client-42", "user": "cy", "plan": "paid", "kind": "billing"})
		assert.Equal(t, http.StatusConflict, resp.StatusCode)
		assert.Contains(t, out["error"], "already used")
		assert.Equal(t, planCron, s.get("client-42").Plan, "the conflicting request changed nothing")
	})

	// Bad input gets a 4xx with a JSON error; the service goes on.
	t.Run("bad input", func(t *testing.T) {
		s := s.on(t)
		for _, tc := range []struct {
			name, method, path, contentType, body string
			code                                  int
		}{
			{"not JSON", "POST", "/reports", "application/json", `{"user":`, 400},
			{"not an object", "POST", "/reports", "application/json", `[1,2]`, 400},
			{"two objects", "POST", "/reports", "application/json", `{"user":"a","plan":"paid","kind":"usage"}{}`, 400},
			{"unknown field", "POST", "/reports", "application/json", `{"user":"a","plan":"paid","kind":"usage","priority":0}`, 400},
			{"wrong type", "POST", "/reports", "application/json", `{"user":7,"plan":"paid","kind":"usage"}`, 400},
			{"no user", "POST", "/reports", "application/json", `{"plan":"paid","kind":"usage"}`, 400},
			{"blank user", "POST", "/reports", "application/json", `{"user":"   ","plan":"paid","kind":"usage"}`, 400},
			{"control character", "POST", "/reports", "application/json", `{"user":"a\u0000b","plan":"paid","kind":"usage"}`, 400},
			{"long user", "POST", "/reports", "application/json", `{"user":"` + strings.Repeat("x", 65) + `","plan":"paid","kind":"usage"}`, 400},
			{"unknown plan", "POST", "/reports", "application/json", `{"user":"a","plan":"gold","kind":"usage"}`, 400},
			{"unknown kind", "POST", "/reports", "application/json", `{"user":"a","plan":"paid","kind":"poem"}`, 400},
			{"bad id", "POST", "/reports", "application/json", `{"id":"a/b","user":"a","plan":"paid","kind":"usage"}`, 400},
			{"bad webhook", "POST", "/reports", "application/json", `{"user":"a","plan":"paid","kind":"usage","webhook_url":"ftp://x"}`, 400},
			{"relative webhook", "POST", "/reports", "application/json", `{"user":"a","plan":"paid","kind":"usage","webhook_url":"/hook"}`, 400},
			{"empty body", "POST", "/reports", "application/json", ``, 400},
			{"form post", "POST", "/reports", "application/x-www-form-urlencoded", `user=a`, 415},
			{"huge body", "POST", "/reports", "application/json", `{"user":"` + strings.Repeat("x", 20<<10) + `"}`, 413},
			{"unknown report", "GET", "/reports/no-such-report", "", "", 404},
			{"unknown report's events", "GET", "/reports/no-such-report/events", "", "", 404},
			{"bad Last-Event-ID", "GET", "/events?after=x", "", "", 400},
			{"bad limit", "GET", "/reports?limit=0", "", "", 400},
			{"unknown path", "GET", "/nothing-here", "", "", 404},
			{"wrong method", "DELETE", "/reports/x", "", "", 405},
		} {
			resp, out := s.do(tc.method, tc.path, tc.contentType, []byte(tc.body))
			assert.Equal(t, tc.code, resp.StatusCode, tc.name)
			assert.Equal(t, "application/json", resp.Header.Get("Content-Type"), tc.name)
			assert.NotEmpty(t, out["error"], tc.name)
			for _, w := range goWords {
				assert.NotContains(t, out["error"], w, "%s: in the API's words", tc.name)
			}
		}
		// Several problems are named at once, and listed one by one; an
		// unknown field does not hide the others.
		resp, out := s.do("POST", "/reports", "application/json", []byte(`{"user":"","plan":"gold","kind":"x","priority":0}`))
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
		for _, want := range []string{"user must", "plan must", "kind must", `unknown field "priority"`} {
			assert.Contains(t, out["error"], want)
		}
		assert.Len(t, out["problems"], 4)
		// Still serving.
		id := s.submit(map[string]any{"user": "after the storm", "plan": "free", "kind": "usage"})
		assert.Equal(t, stateSent, s.waitTerminal(id).State)
	})

	// The list and the stats agree with what was done above.
	t.Run("list and stats", func(t *testing.T) {
		s := s.on(t)
		id := s.submit(map[string]any{"user": "dee", "plan": "paid", "kind": "activity"})
		s.waitTerminal(id)
		resp, out := s.do("GET", "/reports?limit=200", "", nil)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		found := false
		for _, r := range out["reports"].([]any) {
			found = found || r.(map[string]any)["id"] == id
		}
		assert.True(t, found, "the list holds the new report")

		resp, out = s.do("GET", "/stats", "", nil)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		var doc statsDoc
		raw, _ := json.Marshal(out)
		require.NoError(t, json.Unmarshal(raw, &doc))
		require.Len(t, doc.Plans, 3)
		for i, p := range doc.Plans {
			// Numbered as orderly numbers priority levels: from 0, the
			// highest (paid), in the field and in the topic's name.
			assert.Equal(t, plans[i], p.Plan)
			assert.Equal(t, i, p.Priority, p.Plan)
			assert.Equal(t, fmt.Sprintf("reports.p%d", i), p.Topic, p.Plan)
			assert.Equal(t, p.Total[stateSent], p.Sent, "%s: everything was sent within the window", p.Plan)
			assert.Equal(t, s.app.cfg.wipLimits[p.Plan], p.WIP.Limit)
			if p.Sent > 0 {
				assert.Positive(t, p.P50Ms, p.Plan)
				assert.GreaterOrEqual(t, p.P95Ms, p.P50Ms, p.Plan)
			}
		}
	})
}

// on returns the service for a subtest (its methods fail that subtest).
func (s *testService) on(t *testing.T) *testService {
	c := *s
	c.t = t
	return &c
}

// A webhook is signed, retried with backoff after failures, delivered at
// least once with one idempotency key, and its progress is shown by GET.
// A report that fails for good gets its webhook too.
func TestWebhooks(t *testing.T) {
	type delivery struct {
		header http.Header
		body   []byte
		code   int
	}
	var mu sync.Mutex
	deliveries := map[string][]delivery{} // by report id
	receiver := newWebhookReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		require.NoError(t, err)
		id := r.URL.Query().Get("report")
		mu.Lock()
		defer mu.Unlock()
		code := http.StatusOK
		if len(deliveries[id]) < 2 {
			code = http.StatusServiceUnavailable // the first two attempts fail
		}
		deliveries[id] = append(deliveries[id], delivery{header: r.Header.Clone(), body: body, code: code})
		w.WriteHeader(code)
	})

	cfg := testConfig(t, newCluster(t))
	cfg.generateFault = func(_ context.Context, r request, attempt int) error {
		if r.User == "doomed" {
			return fmt.Errorf("attempt %d: cannot render this one", attempt)
		}
		return nil
	}
	s := startService(t, cfg)

	for _, tc := range []struct {
		user  string
		final state
	}{{"eve", stateSent}, {"doomed", stateFailed}} {
		t.Run(string(tc.final), func(t *testing.T) {
			s := s.on(t)
			id := "hook-" + tc.user
			s.submit(map[string]any{"id": id, "user": tc.user, "plan": "free", "kind": "usage",
				"webhook_url": receiver + "?report=" + id})
			var r report
			require.Eventually(t, func() bool {
				r = s.get(id)
				return r.Webhook != nil && r.Webhook.DeliveredAt != nil
			}, waitLong, waitTick, "the webhook is delivered")
			require.Equal(t, tc.final, r.State)
			assert.Equal(t, 3, r.Webhook.Attempts, "two failed attempts, then the good one")
			assert.Empty(t, r.Webhook.LastError)
			if tc.final == stateFailed {
				assert.Equal(t, cfg.maxAttempts, r.Attempts, "generation was tried -max-attempts times")
				assert.Contains(t, r.Error, "cannot render this one")
				assert.Equal(t, []state{stateAccepted, stateQueued, stateGenerating, stateFailed}, historyStates(r))
			}

			mu.Lock()
			ds := deliveries[id]
			mu.Unlock()
			require.Len(t, ds, 3)
			for i, d := range ds {
				assert.NoError(t, verifyWebhook([]byte("test-secret"), d.header, d.body, time.Now(), time.Minute), "attempt %d is signed", i+1)
				assert.Error(t, verifyWebhook([]byte("another secret"), d.header, d.body, time.Now(), time.Minute))
				assert.Equal(t, id+"."+string(tc.final), d.header.Get(headerIdempotencyKey))
				assert.Equal(t, d.header.Get(headerIdempotencyKey), d.header.Get(headerWebhookID))
				assert.Equal(t, ds[0].body, d.body, "every attempt carries the same body")
			}
			var payload webhookPayload
			require.NoError(t, json.Unmarshal(ds[2].body, &payload))
			assert.Equal(t, "report."+string(tc.final), payload.Type)
			assert.Equal(t, id, payload.Report.ID)
			assert.Equal(t, tc.final, payload.Report.State)
		})
	}
	// Every slot came back, the failed report's too.
	for p, u := range s.app.wip.usage() {
		assert.Zero(t, u.InUse, p)
	}
	// Every event of both reports, on every topic, carries its report id
	// as transaction id; the failed generation is in the dead-letter topic.
	counts := requireTransactionIDs(t, cfg.brokers)
	assert.Equal(t, 1, counts[topicGenerate+deadLetterTail])
	assert.Equal(t, 2, counts[topicWebhooks])
	assert.Equal(t, 2, counts[topicRequests])
}

// newWebhookReceiver serves h on a test server and returns its URL.
func newWebhookReceiver(t *testing.T, h http.HandlerFunc) string {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL + "/hook"
}
