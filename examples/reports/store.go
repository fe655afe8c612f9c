package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	_ "modernc.org/sqlite" // the pure-Go SQLite driver, registered as "sqlite"
)

// errNotFound is returned by the store for an unknown report id.
var errNotFound = errors.New("report not found")

// store is the status store: one SQLite file (pure Go, no cgo) holding
// each report's current state and the history of its states.
//
// Every update is idempotent, because every step may see an event twice
// (at-least-once delivery): a state is applied only if it ranks above the
// report's current one (state.rank), and the history holds each state of
// a report at most once. A redelivered event therefore changes nothing,
// and a late one never moves a report backwards.
//
// The store is safe for concurrent use. It uses a single connection, so
// statements never meet SQLite's "database is locked"; every statement is
// short, and no method holds a result set open while it runs another.
type store struct {
	db      *sql.DB
	changed *hub // notified after every applied change
}

const schema = `
CREATE TABLE IF NOT EXISTS reports (
	id                   TEXT PRIMARY KEY,
	user_name            TEXT NOT NULL,
	plan                 TEXT NOT NULL,
	kind                 TEXT NOT NULL,
	webhook_url          TEXT NOT NULL DEFAULT '',
	state                TEXT NOT NULL,
	state_rank           INTEGER NOT NULL,
	attempts             INTEGER NOT NULL DEFAULT 0,
	error                TEXT NOT NULL DEFAULT '',
	accepted_at          INTEGER NOT NULL,
	started_at           INTEGER,
	finished_at          INTEGER,
	delivered_at         INTEGER,
	webhook_attempts     INTEGER NOT NULL DEFAULT 0,
	webhook_delivered_at INTEGER,
	webhook_error        TEXT NOT NULL DEFAULT '',
	updated_at           INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS reports_by_state ON reports (state, plan);
CREATE INDEX IF NOT EXISTS reports_by_finish ON reports (finished_at);
CREATE INDEX IF NOT EXISTS reports_by_accept ON reports (accepted_at);
CREATE TABLE IF NOT EXISTS history (
	seq       INTEGER PRIMARY KEY AUTOINCREMENT,
	report_id TEXT NOT NULL,
	state     TEXT NOT NULL,
	at        INTEGER NOT NULL,
	UNIQUE (report_id, state)
);
`

// openStore opens (creating if needed) the database file at path.
func openStore(path string) (*store, error) {
	q := url.Values{}
	for _, p := range []string{"busy_timeout(5000)", "journal_mode(WAL)", "synchronous(NORMAL)"} {
		q.Add("_pragma", p)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("create the schema in %s: %w", path, err)
	}
	return &store{db: db, changed: newHub()}, nil
}

func (s *store) close() error { return s.db.Close() }

// report is a report as the API shows it.
type report struct {
	ID         string    `json:"id"`
	User       string    `json:"user"`
	Plan       plan      `json:"plan"`
	Priority   int       `json:"priority"`
	Kind       string    `json:"kind"`
	State      state     `json:"state"`
	Attempts   int       `json:"attempts"` // generate attempts made so far
	Error      string    `json:"error,omitempty"`
	AcceptedAt time.Time `json:"accepted_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	// History is every state the report reached, in order, with its time.
	History []change       `json:"history,omitempty"`
	Webhook *webhookStatus `json:"webhook,omitempty"`
}

func (r report) terminal() bool { return r.State.terminal() }

// request returns what was asked for.
func (r report) request() request {
	req := request{ID: r.ID, User: r.User, Plan: r.Plan, Kind: r.Kind, AcceptedAt: r.AcceptedAt}
	if r.Webhook != nil {
		req.Webhook = r.Webhook.URL
	}
	return req
}

// webhookStatus is how the delivery of a report's webhook is going.
type webhookStatus struct {
	URL         string     `json:"url"`
	Attempts    int        `json:"attempts"`
	DeliveredAt *time.Time `json:"delivered_at,omitempty"`
	LastError   string     `json:"last_error,omitempty"`
}

// change is one state a report reached. Seq orders all changes of all
// reports; it is the SSE event id.
type change struct {
	Seq      int64     `json:"seq"`
	ReportID string    `json:"id"`
	State    state     `json:"state"`
	At       time.Time `json:"at"`
}

func nanos(t time.Time) int64 { return t.UnixNano() }

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

// insert stores a new report in state accepted. If the id exists it
// changes nothing and returns inserted == false.
func (s *store) insert(ctx context.Context, r request) (inserted bool, err error) {
	err = s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO reports
			(id, user_name, plan, kind, webhook_url, state, state_rank, accepted_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
			r.ID, r.User, string(r.Plan), r.Kind, r.Webhook, string(stateAccepted), stateAccepted.rank(),
			nanos(r.AcceptedAt), nanos(r.AcceptedAt))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		inserted = true
		_, err = tx.ExecContext(ctx, `INSERT INTO history (report_id, state, at) VALUES (?, ?, ?)
			ON CONFLICT (report_id, state) DO NOTHING`, r.ID, string(stateAccepted), nanos(r.AcceptedAt))
		return err
	})
	if inserted {
		s.changed.notify()
	}
	return inserted, err
}

// advance moves report id to state to at time at, if to ranks above its
// current state, and records it in the history. It reports whether it did.
// errText is kept for stateFailed.
func (s *store) advance(ctx context.Context, id string, to state, at time.Time, errText string) (applied bool, err error) {
	err = s.tx(ctx, func(tx *sql.Tx) error {
		var cur string
		if err := tx.QueryRowContext(ctx, `SELECT state FROM reports WHERE id = ?`, id).Scan(&cur); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("%w: %s", errNotFound, id)
			}
			return err
		}
		if to.rank() <= state(cur).rank() {
			return nil
		}
		var started, finished any
		if to == stateGenerating {
			started = nanos(at)
		}
		if to.terminal() {
			finished = nanos(at)
		}
		_, err := tx.ExecContext(ctx, `UPDATE reports SET state = ?, state_rank = ?, updated_at = ?,
			started_at = COALESCE(started_at, ?), finished_at = COALESCE(finished_at, ?),
			error = CASE WHEN ? <> '' THEN ? ELSE error END
			WHERE id = ?`,
			string(to), to.rank(), nanos(at), started, finished, errText, errText, id)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO history (report_id, state, at) VALUES (?, ?, ?)
			ON CONFLICT (report_id, state) DO NOTHING`, id, string(to), nanos(at)); err != nil {
			return err
		}
		applied = true
		return nil
	})
	if applied {
		s.changed.notify()
	}
	return applied, err
}

// noteAttempt records that generate attempt n of report id started; the
// count only grows.
func (s *store) noteAttempt(ctx context.Context, id string, n int) error {
	res, err := s.db.ExecContext(ctx, `UPDATE reports SET attempts = ? WHERE id = ? AND attempts < ?`, n, id, n)
	if err != nil {
		return err
	}
	if k, _ := res.RowsAffected(); k > 0 {
		s.changed.notify()
	}
	return nil
}

// markDelivered records that the send step delivered report id; it reports
// whether this call was the first to do so.
func (s *store) markDelivered(ctx context.Context, id string, at time.Time) (first bool, err error) {
	res, err := s.db.ExecContext(ctx, `UPDATE reports SET delivered_at = ? WHERE id = ? AND delivered_at IS NULL`, nanos(at), id)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// delivered reports whether the send step already delivered report id.
func (s *store) delivered(ctx context.Context, id string) (bool, error) {
	var at sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT delivered_at FROM reports WHERE id = ?`, id).Scan(&at)
	if errors.Is(err, sql.ErrNoRows) {
		return false, fmt.Errorf("%w: %s", errNotFound, id)
	}
	return at.Valid, err
}

// noteWebhook records a webhook delivery attempt of report id: its number,
// and either its error or, with errText empty, its success at time at.
func (s *store) noteWebhook(ctx context.Context, id string, attempt int, at time.Time, errText string) error {
	var delivered any
	if errText == "" {
		delivered = nanos(at)
	}
	_, err := s.db.ExecContext(ctx, `UPDATE reports SET webhook_attempts = MAX(webhook_attempts, ?),
		webhook_error = ?, webhook_delivered_at = COALESCE(webhook_delivered_at, ?) WHERE id = ?`,
		attempt, errText, delivered, id)
	if err == nil {
		s.changed.notify()
	}
	return err
}

const reportColumns = `id, user_name, plan, kind, webhook_url, state, attempts, error, accepted_at, updated_at,
	webhook_attempts, webhook_delivered_at, webhook_error`

type rowScanner interface{ Scan(dest ...any) error }

func scanReport(row rowScanner) (report, error) {
	var (
		r                    report
		webhookURL, hookErr  string
		accepted, updated    int64
		hookAttempts         int
		hookDelivered        sql.NullInt64
		planName, stateName  string
		errorText, kindValue string
	)
	err := row.Scan(&r.ID, &r.User, &planName, &kindValue, &webhookURL, &stateName, &r.Attempts, &errorText,
		&accepted, &updated, &hookAttempts, &hookDelivered, &hookErr)
	if err != nil {
		return r, err
	}
	r.Plan, r.State, r.Kind, r.Error = plan(planName), state(stateName), kindValue, errorText
	r.Priority = r.Plan.priority()
	r.AcceptedAt, r.UpdatedAt = fromNanos(accepted), fromNanos(updated)
	if webhookURL != "" {
		r.Webhook = &webhookStatus{URL: webhookURL, Attempts: hookAttempts, LastError: hookErr}
		if hookDelivered.Valid {
			t := fromNanos(hookDelivered.Int64)
			r.Webhook.DeliveredAt = &t
		}
	}
	return r, nil
}

// get returns report id with its history, or an error wrapping
// errNotFound.
func (s *store) get(ctx context.Context, id string) (report, error) {
	r, err := s.summary(ctx, id)
	if err != nil {
		return r, err
	}
	r.History, err = s.history(ctx, id, 0)
	return r, err
}

// summary returns report id without its history, or an error wrapping
// errNotFound.
func (s *store) summary(ctx context.Context, id string) (report, error) {
	r, err := scanReport(s.db.QueryRowContext(ctx, `SELECT `+reportColumns+` FROM reports WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("%w: %s", errNotFound, id)
	}
	return r, err
}

// state returns report id's current state, or an error wrapping
// errNotFound.
func (s *store) state(ctx context.Context, id string) (state, error) {
	var st string
	err := s.db.QueryRowContext(ctx, `SELECT state FROM reports WHERE id = ?`, id).Scan(&st)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("%w: %s", errNotFound, id)
	}
	return state(st), err
}

// history returns report id's changes with seq > after, in order.
func (s *store) history(ctx context.Context, id string, after int64) ([]change, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT seq, report_id, state, at FROM history
		WHERE report_id = ? AND seq > ? ORDER BY seq`, id, after)
	if err != nil {
		return nil, err
	}
	return scanChanges(rows)
}

// changesSince returns up to limit changes of any report with seq > after,
// in order.
func (s *store) changesSince(ctx context.Context, after int64, limit int) ([]change, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT seq, report_id, state, at FROM history
		WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit)
	if err != nil {
		return nil, err
	}
	return scanChanges(rows)
}

func scanChanges(rows *sql.Rows) ([]change, error) {
	defer rows.Close()
	var out []change
	for rows.Next() {
		var c change
		var st string
		var at int64
		if err := rows.Scan(&c.Seq, &c.ReportID, &st, &at); err != nil {
			return nil, err
		}
		c.State, c.At = state(st), fromNanos(at)
		out = append(out, c)
	}
	return out, rows.Err()
}

// recent returns the limit most recently accepted reports, newest first,
// without history, and the last change's seq at that moment.
func (s *store) recent(ctx context.Context, limit int) (reports []report, lastSeq int64, err error) {
	err = s.tx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM history`).Scan(&lastSeq); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT `+reportColumns+` FROM reports
			ORDER BY accepted_at DESC, id LIMIT ?`, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			r, err := scanReport(rows)
			if err != nil {
				return err
			}
			reports = append(reports, r)
		}
		return rows.Err()
	})
	return reports, lastSeq, err
}

// unfinished returns the reports not in a terminal state, without
// history, oldest first.
func (s *store) unfinished(ctx context.Context) ([]report, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+reportColumns+` FROM reports
		WHERE state NOT IN (?, ?) ORDER BY accepted_at, id`, string(stateSent), string(stateFailed))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []report
	for rows.Next() {
		r, err := scanReport(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// holders returns, per plan, the reports that hold a WIP slot: started by
// the orchestrator, outcome not yet seen. A restarted orchestrator counts
// them before it starts anything.
func (s *store) holders(ctx context.Context) (map[plan][]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, plan FROM reports WHERE state IN (?, ?) ORDER BY started_at`,
		string(stateGenerating), string(stateSending))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[plan][]string)
	for rows.Next() {
		var id, p string
		if err := rows.Scan(&id, &p); err != nil {
			return nil, err
		}
		out[plan(p)] = append(out[plan(p)], id)
	}
	return out, rows.Err()
}

// countByState returns how many reports of each plan are in each state.
func (s *store) countByState(ctx context.Context) (map[plan]map[state]int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT plan, state, COUNT(*) FROM reports GROUP BY plan, state`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[plan]map[state]int)
	for rows.Next() {
		var p, st string
		var n int
		if err := rows.Scan(&p, &st, &n); err != nil {
			return nil, err
		}
		if out[plan(p)] == nil {
			out[plan(p)] = make(map[state]int)
		}
		out[plan(p)][state(st)] = n
	}
	return out, rows.Err()
}

// finishedReport is a report that reached a terminal state, for latency
// figures.
type finishedReport struct {
	plan                        plan
	state                       state
	accepted, started, finished time.Time
}

// finishedSince returns the reports that reached a terminal state at or
// after since.
func (s *store) finishedSince(ctx context.Context, since time.Time) ([]finishedReport, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT plan, state, accepted_at, COALESCE(started_at, accepted_at), finished_at
		FROM reports WHERE finished_at >= ?`, nanos(since))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []finishedReport
	for rows.Next() {
		var p, st string
		var a, b, f int64
		if err := rows.Scan(&p, &st, &a, &b, &f); err != nil {
			return nil, err
		}
		out = append(out, finishedReport{plan: plan(p), state: state(st), accepted: fromNanos(a), started: fromNanos(b), finished: fromNanos(f)})
	}
	return out, rows.Err()
}

func (s *store) tx(ctx context.Context, f func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// hub tells waiters that something changed: wait returns a channel that is
// closed at the next notify. Safe for concurrent use; notify never blocks.
type hub struct {
	mu sync.Mutex    // guards ch
	ch chan struct{} // closed and replaced by notify
}

func newHub() *hub { return &hub{ch: make(chan struct{})} }

// wait returns a channel closed by the next notify.
func (h *hub) wait() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ch
}

// notify wakes every current waiter.
func (h *hub) notify() {
	h.mu.Lock()
	defer h.mu.Unlock()
	close(h.ch)
	h.ch = make(chan struct{})
}
