package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"
)

// Server-Sent Events. Both streams read the store's history, whose seq is
// the event id: a client that reconnects with Last-Event-ID (browsers do
// so by themselves) resumes after the last change it saw, and a state is
// never skipped. A stream wakes when the store changes (and once a second
// anyway, for changes written by another process on the same file).

const (
	ssePoll      = time.Second      // re-read the store at least this often
	sseKeepAlive = 15 * time.Second // a comment line keeps proxies from closing an idle stream
)

// sseStream writes one event stream.
type sseStream struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func startSSE(w http.ResponseWriter) *sseStream {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	s := &sseStream{w: w, rc: http.NewResponseController(w)}
	_ = s.rc.SetWriteDeadline(time.Time{}) // a stream outlives any server write timeout
	w.WriteHeader(http.StatusOK)
	_ = s.rc.Flush()
	return s
}

// event writes one event; id ≤ 0 leaves the id line out (the client's last
// id stays as it was).
func (s *sseStream) event(name string, id int64, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if id > 0 {
		_, err = fmt.Fprintf(s.w, "event: %s\nid: %d\ndata: %s\n\n", name, id, data)
	} else {
		_, err = fmt.Fprintf(s.w, "event: %s\ndata: %s\n\n", name, data)
	}
	return err
}

func (s *sseStream) keepAlive() error {
	_, err := fmt.Fprint(s.w, ": keep-alive\n\n")
	return err
}

func (s *sseStream) flush() error { return s.rc.Flush() }

// lastEventID is where a stream resumes: the Last-Event-ID header, or the
// after query parameter; 0 for the beginning.
func lastEventID(r *http.Request) (int64, error) {
	v := r.Header.Get("Last-Event-ID")
	if v == "" {
		v = r.URL.Query().Get("after")
	}
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, errors.New("Last-Event-ID (or after) must be a non-negative integer")
	}
	return n, nil
}

// reportEvents streams report id's states, in order, each as an event
// "status" with data {"seq", "id", "state", "at"}, and ends after the
// terminal one (sent or failed).
func (a *app) reportEvents(w http.ResponseWriter, r *http.Request) {
	ctx, id := r.Context(), r.PathValue("id")
	after, err := lastEventID(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if _, err := a.store.state(ctx, id); err != nil {
		if errors.Is(err, errNotFound) {
			writeError(w, http.StatusNotFound, "no report with this id")
		} else {
			writeError(w, http.StatusInternalServerError, "the status store failed")
		}
		return
	}
	s := startSSE(w)
	poll := time.NewTicker(ssePoll)
	defer poll.Stop()
	lastWrite := time.Now()
	for {
		wake := a.store.changed.wait()
		changes, err := a.store.history(ctx, id, after)
		if err != nil {
			a.log.Warn("report events", slog.String("report", id), slog.Any("error", err))
			return
		}
		for _, c := range changes {
			if err := s.event("status", c.Seq, c); err != nil {
				return
			}
			after = c.Seq
			if c.State.terminal() {
				_ = s.flush()
				return
			}
		}
		if len(changes) == 0 {
			// Resumed after the terminal state: nothing more will come.
			if st, err := a.store.state(ctx, id); err != nil || st.terminal() {
				return
			}
		}
		if len(changes) > 0 || time.Since(lastWrite) > sseKeepAlive {
			if len(changes) == 0 {
				_ = s.keepAlive()
			}
			if s.flush() != nil {
				return
			}
			lastWrite = time.Now()
		}
		select {
		case <-wake:
		case <-poll.C:
		case <-ctx.Done():
			return
		case <-a.stopping:
			return
		}
	}
}

// pageChange is an event "status" of the page's stream: a change and the
// report as it is now.
type pageChange struct {
	Seq    int64     `json:"seq"`
	State  state     `json:"state"`
	At     time.Time `json:"at"`
	Report report    `json:"report"`
}

// pageEvents is the page's stream: first "snapshot" ({"reports": the 50
// most recent}), then "status" (pageChange) for every change of any
// report, and "stats" (GET /stats) every second. It runs until the client
// leaves or the service stops.
func (a *app) pageEvents(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	after, err := lastEventID(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s := startSSE(w)
	if after == 0 {
		reps, seq, err := a.store.recent(ctx, 50)
		if err != nil {
			a.log.Warn("page events", slog.Any("error", err))
			return
		}
		if reps == nil {
			reps = []report{}
		}
		if err := s.event("snapshot", seq, map[string]any{"reports": reps, "seq": seq}); err != nil {
			return
		}
		after = seq
	}
	tick := time.NewTicker(ssePoll)
	defer tick.Stop()
	sendStats := true
	for {
		wake := a.store.changed.wait()
		if sendStats {
			doc, err := a.stats(ctx)
			if err == nil {
				err = s.event("stats", 0, doc)
			}
			if err != nil {
				return
			}
			sendStats = false
		}
		changes, err := a.store.changesSince(ctx, after, 200)
		if err != nil {
			return
		}
		for _, c := range changes {
			rep, err := a.store.summary(ctx, c.ReportID)
			if err != nil {
				return
			}
			if err := s.event("status", c.Seq, pageChange{Seq: c.Seq, State: c.State, At: c.At, Report: rep}); err != nil {
				return
			}
			after = c.Seq
		}
		if s.flush() != nil {
			return
		}
		if len(changes) == 200 {
			continue // more to send
		}
		select {
		case <-wake:
		case <-tick.C:
			sendStats = true
		case <-ctx.Done():
			return
		case <-a.stopping:
			return
		}
	}
}
