package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// handler is the service's HTTP API and page:
//
//	POST /reports              submit (202 + Location once durably in Kafka)
//	GET  /reports              the most recent reports (?limit=1..200, default 50)
//	GET  /reports/{id}         one report: state, attempts, history, webhook
//	GET  /reports/{id}/events  SSE: the report's states, in order, until a terminal one
//	GET  /events               SSE for the page: recent reports, every change, stats each second
//	GET  /stats                per-plan queue depth, WIP, latency
//	GET  /                     the page
//
// Every error is JSON ({"error": "..."}; a refused POST body also lists
// each problem in "problems"), and a panic in a handler becomes a 500,
// never a crash.
func (a *app) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /reports", a.postReport)
	mux.HandleFunc("GET /reports", a.listReports)
	mux.HandleFunc("GET /reports/{id}", a.getReport)
	mux.HandleFunc("GET /reports/{id}/events", a.reportEvents)
	mux.HandleFunc("GET /events", a.pageEvents)
	mux.HandleFunc("GET /stats", a.getStats)
	mux.Handle("GET /{$}", pageHandler())
	mux.Handle("GET /static/", staticHandler())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				a.log.Error("handler panic", slog.String("path", r.URL.Path), slog.Any("panic", v))
				writeError(w, http.StatusInternalServerError, "internal error")
			}
		}()
		if _, pattern := mux.Handler(r); pattern == "" {
			// No route: the mux's own 404 or 405 (with Allow), as JSON.
			h, _ := mux.Handler(r)
			rec := &statusRecorder{header: http.Header{}}
			h.ServeHTTP(rec, r)
			if allow := rec.header.Get("Allow"); allow != "" {
				w.Header().Set("Allow", allow)
			}
			writeError(w, rec.code, strings.ToLower(http.StatusText(rec.code)))
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// statusRecorder keeps only the status and headers of a response.
type statusRecorder struct {
	header http.Header
	code   int
}

func (s *statusRecorder) Header() http.Header         { return s.header }
func (s *statusRecorder) Write(p []byte) (int, error) { return len(p), nil }
func (s *statusRecorder) WriteHeader(code int)        { s.code = code }

// acceptance is the body of a 202.
type acceptance struct {
	ID        string `json:"id"`
	State     state  `json:"state"`
	StatusURL string `json:"status_url"`
	EventsURL string `json:"events_url"`
	// Replayed is true when the id was submitted before: this is that
	// report, not a new one.
	Replayed bool `json:"replayed"`
}

const maxBody = 16 << 10

func (a *app) postReport(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			writeError(w, http.StatusUnsupportedMediaType, "the body must be JSON (Content-Type: application/json)")
			return
		}
	}
	req, err := decodeSubmission(http.MaxBytesReader(w, r.Body, maxBody))
	var bad *badRequest
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &bad):
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": bad.Error(), "problems": bad.problems})
		return
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is larger than %d bytes", maxBody))
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, "the body could not be read")
		return
	}
	rep, created, err := a.submit(r.Context(), req)
	switch {
	case errors.Is(err, errConflict):
		writeError(w, http.StatusConflict, err.Error())
		return
	case errors.Is(err, errUnavailable):
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	case err != nil:
		a.log.Error("submit", slog.String("report", req.ID), slog.Any("error", err))
		writeError(w, http.StatusInternalServerError, "the report could not be stored; repeat the request with the same id")
		return
	}
	loc := "/reports/" + url.PathEscape(rep.ID)
	w.Header().Set("Location", loc)
	if !created {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	writeJSON(w, http.StatusAccepted, acceptance{ID: rep.ID, State: rep.State, StatusURL: loc, EventsURL: loc + "/events", Replayed: !created})
}

var (
	errConflict    = errors.New("this id was already used for a different request")
	errUnavailable = errors.New("the request could not be written to Kafka; nothing was accepted, try again")
)

// submit accepts a request: it is produced to reports.requests (acked by
// every in-sync replica) and only then stored as accepted. With an id that
// exists it returns that report, created == false, if the request is the
// same, and errConflict if not.
func (a *app) submit(ctx context.Context, req request) (rep report, created bool, err error) {
	if req.ID != "" {
		rep, err := a.store.get(ctx, req.ID)
		if err == nil {
			return a.replay(rep, req)
		}
		if !errors.Is(err, errNotFound) {
			return rep, false, err
		}
	} else {
		req.ID = "r-" + strings.ToLower(rand.Text()[:16])
	}
	req.AcceptedAt = time.Now().UTC()
	ctx, span := a.tracer.Start(ctx, "send "+topicRequests, trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(attribute.String(attributeTransactionID, req.ID), attribute.String("messaging.system", "kafka"),
			attribute.String("messaging.destination.name", topicRequests)))
	defer span.End()
	if err := a.produce(ctx, topicRequests, messageFor(eventRequested, req)); err != nil {
		span.SetStatus(codes.Error, err.Error())
		a.log.Warn("submit: produce", slog.String("report", req.ID), slog.Any("error", err))
		return rep, false, errUnavailable
	}
	inserted, err := a.store.insert(ctx, req)
	if err != nil {
		return rep, false, err
	}
	rep, err = a.store.get(ctx, req.ID)
	if err != nil {
		return rep, false, err
	}
	// Not inserted: the same id was submitted at the same moment, or
	// triage stored this very request first (it stores what it reads).
	// The report is this request's if it holds its acceptance time.
	if !inserted && !rep.AcceptedAt.Equal(req.AcceptedAt) {
		return a.replay(rep, req)
	}
	return rep, true, nil
}

// replay answers a repeated id: the stored report if it is the same
// request, errConflict if not.
func (a *app) replay(rep report, req request) (report, bool, error) {
	was := rep.request()
	if was.User != req.User || was.Plan != req.Plan || was.Kind != req.Kind || was.Webhook != req.Webhook {
		return rep, false, errConflict
	}
	return rep, false, nil
}

func (a *app) getReport(w http.ResponseWriter, r *http.Request) {
	rep, err := a.store.get(r.Context(), r.PathValue("id"))
	switch {
	case errors.Is(err, errNotFound):
		writeError(w, http.StatusNotFound, "no report with this id")
	case err != nil:
		a.log.Error("get report", slog.Any("error", err))
		writeError(w, http.StatusInternalServerError, "the status store failed")
	default:
		writeJSON(w, http.StatusOK, rep)
	}
}

func (a *app) listReports(w http.ResponseWriter, r *http.Request) {
	limit := 50
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 200 {
			writeError(w, http.StatusBadRequest, "limit must be an integer in 1..200")
			return
		}
		limit = n
	}
	reps, _, err := a.store.recent(r.Context(), limit)
	if err != nil {
		a.log.Error("list reports", slog.Any("error", err))
		writeError(w, http.StatusInternalServerError, "the status store failed")
		return
	}
	if reps == nil {
		reps = []report{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"reports": reps})
}

func (a *app) getStats(w http.ResponseWriter, r *http.Request) {
	doc, err := a.stats(r.Context())
	if err != nil {
		a.log.Error("stats", slog.Any("error", err))
		writeError(w, http.StatusInternalServerError, "the status store failed")
		return
	}
	writeJSON(w, http.StatusOK, doc)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}
