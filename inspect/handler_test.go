package inspect

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/memory"
	"github.com/stretchr/testify/require"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// rig is an engine over two partitions of topic "t": on partition 0 the
// key "stuck" blocks its handler (past its attempt timeout) with another
// record of the key behind it; on partition 1 the key "a/b" is parked
// after a poison record. Every record's value is secret.
type rig struct {
	log  *memory.Log
	eng  *orderly.Engine
	gate chan struct{}
	stop func()
}

const secret = "SECRET-VALUE-never-shown"

func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{log: memory.NewLog(), gate: make(chan struct{})}
	require.NoError(t, r.log.CreateTopic("t", 2))
	for _, rec := range []struct {
		p   int32
		key string
	}{{0, "stuck"}, {0, "free"}, {0, "stuck"}, {1, "a/b"}, {1, "ok"}} {
		_, err := r.log.ProduceTo("t", rec.p, []byte(rec.key), []byte(secret))
		require.NoError(t, err)
	}
	h := orderly.HandlerFunc(func(ctx context.Context, rec *orderly.Record) error {
		switch string(rec.Key) {
		case "stuck":
			<-r.gate // ignores its context
		case "a/b":
			return orderly.Permanent(errors.New("poison " + string(rec.Value)))
		}
		return nil
	})
	sink := orderly.DeadLetterFunc(func(context.Context, *orderly.Record, orderly.DeadLetter) error { return nil })
	var err error
	r.eng, err = orderly.New(r.log.Member("g", []string{"t"}), h, orderly.WithAttemptTimeout(5*time.Millisecond),
		orderly.WithDeadLetter(sink), orderly.WithKeyParking(orderly.ParkUntilReleased), orderly.WithLogger(quiet))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.eng.Run(ctx) }()
	var once bool
	r.stop = func() {
		if once {
			return
		}
		once = true
		close(r.gate)
		cancel()
		require.NoError(t, <-done)
	}
	t.Cleanup(r.stop)
	return r
}

// get fetches path from srv and decodes the JSON answer into v (if not
// nil); it returns the status and the raw body.
func get(t *testing.T, srv *httptest.Server, path string, v any) (int, string) {
	t.Helper()
	res, err := srv.Client().Get(srv.URL + path)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	if v != nil && res.StatusCode == http.StatusOK {
		require.NoError(t, json.Unmarshal(b, v), string(b))
	}
	return res.StatusCode, string(b)
}

func post(t *testing.T, srv *httptest.Server, path string, header http.Header) (int, releaseResult) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL+path, nil)
	require.NoError(t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	var out releaseResult
	b, _ := io.ReadAll(res.Body)
	_ = json.Unmarshal(b, &out)
	return res.StatusCode, out
}

// waitState polls state.json until ok holds, and returns that state.
func waitState(t *testing.T, srv *httptest.Server, ok func(State) bool) State {
	t.Helper()
	var s State
	deadline := time.Now().Add(10 * time.Second)
	for {
		s = State{}
		code, _ := get(t, srv, "/orderly/state.json", &s)
		if code == http.StatusOK && ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("state.json never looked as expected; last: %+v", s)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func serve(t *testing.T, h http.Handler) *httptest.Server {
	mux := http.NewServeMux()
	mux.Handle("/orderly/", http.StripPrefix("/orderly", h))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// state.json of a running engine names the stuck partition's blocking
// record, lists the stuck handler and the parked key, has every
// documented field, and never a record's value.
func TestStateJSONOfARunningEngine(t *testing.T) {
	r := newRig(t)
	h, err := New(r.eng, WithStallAfter(time.Millisecond))
	require.NoError(t, err)
	srv := serve(t, h)

	s := waitState(t, srv, func(s State) bool {
		return len(s.Partitions) == 2 && len(s.Engine.Stuck) == 1 && s.Partitions[1].Parked == 1 && s.Partitions[1].Blocking == nil &&
			s.Partitions[0].Blocking != nil && s.Partitions[0].Stalled && len(s.Partitions[0].TopKeys) == 1
	})
	p0 := s.Partitions[0]
	require.Equal(t, "t", p0.Topic)
	require.Equal(t, int64(0), p0.Watermark)
	require.Equal(t, int64(0), p0.Blocking.Offset)
	require.Equal(t, "stuck", *p0.Blocking.Key)
	require.Equal(t, "running", p0.Blocking.State)
	require.Equal(t, 1, p0.Blocking.Behind)
	require.Equal(t, "stuck", p0.TopKeys[0].Key)
	require.Equal(t, 2, p0.TopKeys[0].Records)
	require.Equal(t, int64(0), s.Engine.Stuck[0].Offset)
	require.Equal(t, "stuck", *s.Engine.Stuck[0].Key)
	require.Equal(t, []ParkedKey{{Key: "a/b", Ref: h.ref("t", 1, "a/b")}}, s.Partitions[1].ParkedKeys)
	require.Nil(t, s.Partitions[1].Blocking)
	require.False(t, s.Partitions[1].Stalled)
	require.False(t, s.ReleaseEnabled)

	_, body := get(t, srv, "/orderly/state.json", nil)
	require.NotContains(t, body, secret)
	var doc map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &doc))
	// Under ByKey no key's head waits on another key, so waiting_on is
	// null throughout; TestStateJSONHasEveryDocumentedField covers it.
	paths := slices.DeleteFunc(documentedFields(t), func(p string) bool { return strings.HasPrefix(p, "record.waiting_on.") })
	requireDocumentedFields(t, paths, doc)

	r.stop()
	s = waitState(t, srv, func(s State) bool { return len(s.Partitions) == 0 })
	require.Empty(t, s.Engine.Stuck)
}

// The handler is read-only by default; WithRelease releases parked keys
// by key or by ref, and refuses cross-origin requests.
func TestRelease(t *testing.T) {
	r := newRig(t)
	ro, err := New(r.eng)
	require.NoError(t, err)
	rw, err := New(r.eng, WithRelease())
	require.NoError(t, err)
	srvRO, srvRW := serve(t, ro), serve(t, rw)
	s := waitState(t, srvRW, func(s State) bool { return len(s.Partitions) == 2 && s.Partitions[1].Parked == 1 })
	require.True(t, s.ReleaseEnabled)
	byKey := "/orderly/partitions/t/1/keys/" + url.PathEscape("a/b") + "/release"
	byRef := "/orderly/partitions/t/1/parked/" + s.Partitions[1].ParkedKeys[0].Ref + "/release"

	code, res := post(t, srvRO, byKey, nil)
	require.Equal(t, http.StatusForbidden, code)
	require.Contains(t, res.Error, "WithRelease")
	code, _ = post(t, srvRO, byRef, nil)
	require.Equal(t, http.StatusForbidden, code)

	code, _ = post(t, srvRW, byKey, http.Header{"Sec-Fetch-Site": {"cross-site"}, "Origin": {"https://elsewhere.example"}})
	require.Equal(t, http.StatusForbidden, code, "cross-origin requests are refused")
	code, res = post(t, srvRW, "/orderly/partitions/t/x/keys/k/release", nil)
	require.Equal(t, http.StatusBadRequest, code, res.Error)
	code, _ = post(t, srvRW, "/orderly/partitions/t/0/keys/"+url.PathEscape("a/b")+"/release", nil)
	require.Equal(t, http.StatusNotFound, code, "not parked on partition 0")
	code, _ = post(t, srvRW, "/orderly/partitions/t/1/parked/nonsense/release", nil)
	require.Equal(t, http.StatusNotFound, code)
	require.Equal(t, 1, r.eng.Inspect().Partitions[1].Parked, "nothing released so far")

	code, res = post(t, srvRW, byRef, http.Header{"Sec-Fetch-Site": {"same-origin"}})
	require.Equal(t, http.StatusOK, code)
	require.True(t, res.Released)
	require.Zero(t, r.eng.Inspect().Partitions[1].Parked)

	// Parked again (a new poison record of the key), then released by key.
	_, err = r.log.ProduceTo("t", 1, []byte("a/b"), []byte(secret))
	require.NoError(t, err)
	waitState(t, srvRW, func(s State) bool { return len(s.Partitions) == 2 && s.Partitions[1].Parked == 1 })
	code, res = post(t, srvRW, byKey, nil)
	require.Equal(t, http.StatusOK, code, res.Error)
	require.Zero(t, r.eng.Inspect().Partitions[1].Parked)
	code, _ = post(t, srvRW, byKey, nil)
	require.Equal(t, http.StatusNotFound, code, "released already")
}

// The page is self-contained: no external asset, a script and style
// allowed by a fresh nonce only, the refresh interval in its body.
func TestPage(t *testing.T) {
	eng, err := orderly.New(memory.NewLog().Member("g", []string{"t"}), orderly.HandlerFunc(func(context.Context, *orderly.Record) error { return nil }))
	require.NoError(t, err)
	h, err := New(eng, WithRefresh(250*time.Millisecond))
	require.NoError(t, err)
	srv := serve(t, h)
	res, err := srv.Client().Get(srv.URL + "/orderly/")
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	page := string(b)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "text/html; charset=utf-8", res.Header.Get("Content-Type"))
	csp := res.Header.Get("Content-Security-Policy")
	nonce := regexp.MustCompile(`script-src 'nonce-([^']+)'`).FindStringSubmatch(csp)
	require.NotNil(t, nonce, csp)
	require.Contains(t, page, `<script nonce="`+nonce[1]+`">`)
	require.Contains(t, page, `<style nonce="`+nonce[1]+`">`)
	require.Contains(t, csp, "default-src 'none'")
	require.Contains(t, page, `data-refresh-ms="250"`)
	require.NotContains(t, page, "{{")
	for _, external := range []string{"http://", "https://", "<link", " src=", "@import"} {
		require.NotContains(t, page, external)
	}
	res2, err := srv.Client().Get(srv.URL + "/orderly/")
	require.NoError(t, err)
	res2.Body.Close()
	require.NotEqual(t, csp, res2.Header.Get("Content-Security-Policy"), "a fresh nonce per response")

	code, _ := get(t, srv, "/orderly/nothing", nil)
	require.Equal(t, http.StatusNotFound, code)
}

// Bad options are refused with errors wrapping orderly.ErrInvalidOption.
func TestNewRejectsBadOptions(t *testing.T) {
	eng := new(orderly.Engine)
	for _, tc := range []struct {
		eng  *orderly.Engine
		opts []Option
		want string
	}{
		{nil, nil, "nil engine"},
		{eng, []Option{nil}, "nil Option"},
		{eng, []Option{WithMaxKeyLength(-1)}, "WithMaxKeyLength(-1)"},
		{eng, []Option{WithRefresh(time.Millisecond)}, "WithRefresh(1ms)"},
		{eng, []Option{WithRefresh(-time.Second)}, "WithRefresh(-1s)"},
		{eng, []Option{WithStallAfter(-time.Second)}, "WithStallAfter(-1s)"},
	} {
		h, err := New(tc.eng, tc.opts...)
		require.Nil(t, h)
		require.ErrorIs(t, err, orderly.ErrInvalidOption)
		require.True(t, strings.Contains(err.Error(), tc.want), err.Error())
	}
	h, err := New(eng, WithMaxKeyLength(0), WithRefresh(0), WithStallAfter(0), WithTopKeys(0), WithMaxErrorLength(0))
	require.NoError(t, err)
	require.Equal(t, config{maxKeyLen: DefaultMaxKeyLength, maxErrorLen: DefaultMaxErrorLength, refresh: DefaultRefresh,
		stallAfter: DefaultStallAfter}, h.cfg, "zero means the default")
}
