package inspect

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/orderly-go/orderly"
)

// Defaults of the options.
const (
	DefaultMaxKeyLength   = 32
	DefaultMaxErrorLength = 200
	DefaultRefresh        = time.Second
	DefaultStallAfter     = 10 * time.Second
)

// Option configures a Handler; New checks each.
type Option func(*config)

type config struct {
	release     bool
	maxKeyLen   int
	maxErrorLen int
	topKeys     int
	parkedKeys  int
	refresh     time.Duration
	stallAfter  time.Duration
	errs        []error
}

func (c *config) fail(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("%w: inspect."+format, append([]any{orderly.ErrInvalidOption}, args...)...))
}

// WithRelease serves POST …/partitions/{topic}/{partition}/keys/{key}/release
// and POST …/partitions/{topic}/{partition}/parked/{ref}/release, which
// release a parked key (orderly.Engine.ReleaseKey), and shows a release
// button beside each parked key on the page. Without it the handler is
// read-only and answers those requests with 403 Forbidden.
func WithRelease() Option { return func(c *config) { c.release = true } }

// WithMaxKeyLength sets the most characters of a key shown (longer keys
// end in "…"). Default DefaultMaxKeyLength (32); 0 means the default;
// negative is invalid.
func WithMaxKeyLength(n int) Option {
	return func(c *config) {
		switch {
		case n < 0:
			c.fail("WithMaxKeyLength(%d): must be ≥ 1 (0: the default)", n)
		case n > 0:
			c.maxKeyLen = n
		}
	}
}

// WithMaxErrorLength sets the most characters of a record's last error
// shown (errors are the handler's own text, and may quote what they
// should not: keep them short, or hide them). Default
// DefaultMaxErrorLength (200); 0 means the default; a negative value
// hides errors (last_error is null).
func WithMaxErrorLength(n int) Option {
	return func(c *config) {
		if n != 0 {
			c.maxErrorLen = n
		}
	}
}

// WithTopKeys sets how many of each partition's busiest keys are shown.
// Default orderly.DefaultInspectTopKeys (5); 0 means the default; a
// negative value shows none.
func WithTopKeys(n int) Option { return func(c *config) { c.topKeys = n } }

// WithParkedKeys sets how many parked keys are listed per partition (the
// count is always given). Default orderly.DefaultInspectParkedKeys (20);
// 0 means the default; a negative value lists none.
func WithParkedKeys(n int) Option { return func(c *config) { c.parkedKeys = n } }

// WithRefresh sets how often the page fetches state.json. Default
// DefaultRefresh (1s); 0 means the default; otherwise at least 100ms.
func WithRefresh(d time.Duration) Option {
	return func(c *config) {
		switch {
		case d < 0 || (d > 0 && d < 100*time.Millisecond):
			c.fail("WithRefresh(%v): must be ≥ 100ms (0: the default)", d)
		case d > 0:
			c.refresh = d
		}
	}
}

// WithStallAfter sets how long a record may hold a partition's watermark
// before the partition is marked stalled (stalled in state.json; the page
// shows the row in red). Default DefaultStallAfter (10s); 0 means the
// default; negative is invalid.
func WithStallAfter(d time.Duration) Option {
	return func(c *config) {
		switch {
		case d < 0:
			c.fail("WithStallAfter(%v): must be > 0 (0: the default)", d)
		case d > 0:
			c.stallAfter = d
		}
	}
}

// Handler serves an engine's inspection: the page, state.json and, with
// WithRelease, the release endpoints. It is safe for concurrent use. Each
// request for state.json (and each page refresh) takes one
// orderly.Engine.InspectWith, paid by the request.
type Handler struct {
	eng    *orderly.Engine
	cfg    config
	secret [32]byte // keys parked-key refs
	mux    *http.ServeMux
	post   http.Handler // the release routes behind cross-origin protection
}

// New returns a handler for eng. It returns an error wrapping
// orderly.ErrInvalidOption for a nil engine or a bad option.
//
// Mount it under a prefix with http.StripPrefix, keeping the prefix's
// trailing slash for the page:
//
//	mux.Handle("/orderly/", http.StripPrefix("/orderly", h))
//
// serves the page at /orderly/ and the snapshot at /orderly/state.json.
func New(eng *orderly.Engine, opts ...Option) (*Handler, error) {
	cfg := config{maxKeyLen: DefaultMaxKeyLength, maxErrorLen: DefaultMaxErrorLength,
		refresh: DefaultRefresh, stallAfter: DefaultStallAfter}
	if eng == nil {
		cfg.fail("New: nil engine")
	}
	for _, o := range opts {
		if o == nil {
			cfg.fail("New: nil Option")
			continue
		}
		o(&cfg)
	}
	if len(cfg.errs) > 0 {
		return nil, errors.Join(cfg.errs...)
	}
	h := &Handler{eng: eng, cfg: cfg, mux: http.NewServeMux()}
	if _, err := rand.Read(h.secret[:]); err != nil {
		return nil, err
	}
	h.mux.HandleFunc("GET /{$}", h.page)
	h.mux.HandleFunc("GET /state.json", h.stateJSON)
	release := http.NewServeMux()
	release.HandleFunc("POST /partitions/{topic}/{partition}/keys/{key}/release", h.releaseKey)
	release.HandleFunc("POST /partitions/{topic}/{partition}/parked/{ref}/release", h.releaseRef)
	h.post = http.NewCrossOriginProtection().Handler(release)
	h.mux.Handle("POST /partitions/", h.post)
	return h, nil
}

// ServeHTTP serves the page (GET /), the snapshot (GET /state.json) and
// the release endpoints (POST /partitions/…/release), relative to where
// the handler is mounted.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// State takes an inspection of the engine and returns it as served in
// state.json.
func (h *Handler) State() State {
	return h.state(h.eng.InspectWith(orderly.InspectOptions{TopKeys: h.cfg.topKeys, ParkedKeys: h.cfg.parkedKeys}))
}

func (h *Handler) stateJSON(w http.ResponseWriter, r *http.Request) {
	b, err := json.Marshal(h.State())
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(b)
}

//go:embed page.html
var pageHTML []byte

// page serves the page, with a fresh nonce for its inline script and
// style, and its settings in the body's data attributes.
func (h *Handler) page(w http.ResponseWriter, r *http.Request) {
	var n [18]byte
	_, _ = rand.Read(n[:])
	nonce := base64.StdEncoding.EncodeToString(n[:])
	b := bytes.ReplaceAll(pageHTML, []byte("{{nonce}}"), []byte(nonce))
	b = bytes.ReplaceAll(b, []byte("{{refresh_ms}}"), []byte(strconv.FormatInt(h.cfg.refresh.Milliseconds(), 10)))
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; connect-src 'self'; img-src 'self' data:; "+
		"script-src 'nonce-"+nonce+"'; style-src 'nonce-"+nonce+"'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	_, _ = w.Write(b)
}

// releaseResult is the JSON answer of the release endpoints.
type releaseResult struct {
	Released bool   `json:"released"`
	Error    string `json:"error,omitempty"`
}

func reply(w http.ResponseWriter, code int, res releaseResult) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(res)
}

// target reads the topic and partition of a release request; it answers
// the request itself and returns false when it cannot go on.
func (h *Handler) target(w http.ResponseWriter, r *http.Request) (string, int32, bool) {
	if !h.cfg.release {
		reply(w, http.StatusForbidden, releaseResult{Error: "release is not enabled (inspect.WithRelease)"})
		return "", 0, false
	}
	p, err := strconv.ParseInt(r.PathValue("partition"), 10, 32)
	if err != nil || p < 0 {
		reply(w, http.StatusBadRequest, releaseResult{Error: "partition must be a number ≥ 0"})
		return "", 0, false
	}
	return r.PathValue("topic"), int32(p), true
}

func (h *Handler) releaseKey(w http.ResponseWriter, r *http.Request) {
	topic, p, ok := h.target(w, r)
	if !ok {
		return
	}
	h.release(w, topic, p, r.PathValue("key"))
}

func (h *Handler) releaseRef(w http.ResponseWriter, r *http.Request) {
	topic, p, ok := h.target(w, r)
	if !ok {
		return
	}
	ref := r.PathValue("ref")
	in := h.eng.InspectWith(orderly.InspectOptions{TopKeys: -1, ParkedKeys: math.MaxInt})
	for _, pi := range in.Partitions {
		if pi.Topic != topic || pi.Partition != p {
			continue
		}
		for _, k := range pi.ParkedKeys {
			if hmac.Equal([]byte(h.ref(topic, p, k.Key)), []byte(ref)) {
				h.release(w, topic, p, k.Key)
				return
			}
		}
	}
	reply(w, http.StatusNotFound, releaseResult{Error: "no parked key with that ref on this partition"})
}

func (h *Handler) release(w http.ResponseWriter, topic string, p int32, key string) {
	if !h.eng.ReleaseKey(topic, p, key) {
		reply(w, http.StatusNotFound, releaseResult{Error: "the key is not parked on this partition"})
		return
	}
	reply(w, http.StatusOK, releaseResult{Released: true})
}
