package main

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"time"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/orderlysarama"
)

// The pipeline's steps. Each is the handler of an orderly engine reading
// one topic, keyed by report id, and each is idempotent: it looks at the
// report's state in the store first, so a redelivered event changes
// nothing or only repeats a produce that may have been lost.
//
// Every step records a state before it produces the event that lets the
// next step act, so the history holds every state in order. If it stops
// in between, the event is read again and the produce is repeated.
//
//	reports.requests ─triage─► reports.p0 | p1 | p2 ─orchestrator (WIP slot taken)─►
//	reports.generate ─generate (retries, dead letters)─► reports.send ─send─►
//	reports.outcomes ─orchestrator (WIP slot released)─► reports.webhooks ─webhooks─► client

// pipeline makes a step's handler: decode (its errors are permanent: the
// record goes to the dead-letter topic), then handle.
func pipeline(handle func(ctx context.Context, m message) error, types ...string) orderly.Handler {
	return orderly.Pipeline[message, struct{}]{
		Decode: func(r *orderly.Record) (message, error) { return decodeMessage(r, types...) },
		Handle: func(ctx context.Context, m message) (struct{}, error) { return struct{}{}, handle(ctx, m) },
	}.Handler()
}

// storeErr makes an unknown report a permanent error: no retry brings it
// into existence.
func storeErr(err error) error {
	if errors.Is(err, errNotFound) {
		return orderly.Permanent(err)
	}
	return err
}

// triageHandler routes each request to its plan's priority topic.
func (a *app) triageHandler() orderly.Handler {
	return pipeline(func(ctx context.Context, m message) error {
		// The API stores the report after producing it; if it failed in
		// between, the report is stored here.
		if _, err := a.store.insert(ctx, m.request()); err != nil {
			return err
		}
		// What is stored wins: a second request with the same id and
		// other contents (refused by the API) is not routed by its own.
		rep, err := a.store.summary(ctx, m.ID)
		if err != nil {
			return storeErr(err)
		}
		if rep.State.rank() > stateQueued.rank() {
			return nil // already started
		}
		if _, err := a.store.advance(ctx, m.ID, stateQueued, time.Now(), ""); err != nil {
			return storeErr(err)
		}
		return a.produce(ctx, rep.Plan.topic(), messageFor(eventQueued, rep.request()))
	}, eventRequested)
}

// startHandler is the orchestrator for plan p's priority topic: it starts
// a report once the plan has a free WIP slot. The call waits for the slot;
// the next records of the topic wait behind it (in order), while the other
// plans' orchestrators go on.
func (a *app) startHandler(p plan) orderly.Handler {
	return pipeline(func(ctx context.Context, m message) error {
		if m.Plan != p {
			return orderly.Permanent(fmt.Errorf("report %s of plan %s in the topic of %s", m.ID, m.Plan, p))
		}
		st, err := a.store.state(ctx, m.ID)
		if err != nil {
			return storeErr(err)
		}
		switch {
		case st == stateGenerating:
			// Started before (this is a redelivery): it holds its slot;
			// make sure its command reached the generate step.
			a.wip.hold(p, m.ID)
			return a.produce(ctx, topicGenerate, messageFor(eventGenerate, m.request()))
		case st.rank() > stateGenerating.rank():
			return nil // generated, sent or failed already
		}
		if err := a.wip.acquire(ctx, a.stopping, p, m.ID); err != nil {
			return err // stopping: the record is read again after a restart
		}
		applied, err := a.store.advance(ctx, m.ID, stateGenerating, time.Now(), "")
		if err != nil {
			a.wip.release(p, m.ID)
			return storeErr(err)
		}
		if !applied {
			if st, err := a.store.state(ctx, m.ID); err != nil || !st.holdsSlot() {
				a.wip.release(p, m.ID)
				return storeErr(err)
			}
		}
		return a.produce(ctx, topicGenerate, messageFor(eventGenerate, m.request()))
	}, eventQueued)
}

// outcomeHandler is the orchestrator's other half: a report's outcome
// comes back, the report is finished and its WIP slot released, and its
// webhook (if any) is due.
func (a *app) outcomeHandler() orderly.Handler {
	return pipeline(func(ctx context.Context, m message) error {
		to, errText := stateSent, ""
		if m.Type == eventFailed {
			to, errText = stateFailed, m.Error
		}
		if _, err := a.store.advance(ctx, m.ID, to, time.Now(), errText); err != nil {
			return storeErr(err)
		}
		a.wip.release(m.Plan, m.ID)
		if m.Webhook == "" {
			return nil
		}
		return a.produce(ctx, topicWebhooks, messageFor(eventWebhook, m.request()))
	}, eventSent, eventFailed)
}

// generateHandler simulates the expensive part: rendering the report.
// Failed attempts are retried with backoff by the engine; after the last
// one the record goes to generateFailures.
func (a *app) generateHandler() orderly.Handler {
	return pipeline(func(ctx context.Context, m message) error {
		st, err := a.store.state(ctx, m.ID)
		if err != nil {
			return storeErr(err)
		}
		switch st {
		case stateSending:
			// Generated before a stop: make sure the send step has it.
			return a.produce(ctx, topicSend, messageFor(eventSend, m.request()))
		case stateGenerating:
		default:
			return nil // finished (or not started, which the orchestrator never lets happen)
		}
		attempt := attemptOf(ctx)
		if err := a.store.noteAttempt(ctx, m.ID, attempt); err != nil {
			return err
		}
		if err := a.render(ctx, m.request(), attempt); err != nil {
			return err
		}
		if _, err := a.store.advance(ctx, m.ID, stateSending, time.Now(), ""); err != nil {
			return storeErr(err)
		}
		return a.produce(ctx, topicSend, messageFor(eventSend, m.request()))
	}, eventGenerate)
}

// render is the simulated work: a log-normal time, and failures injected
// by -flaky (any attempt) and -poison (every attempt of some reports).
func (a *app) render(ctx context.Context, r request, attempt int) error {
	if err := sleep(ctx, logNormal(a.cfg.genMedian, a.cfg.genSpread)); err != nil {
		return err
	}
	if f := a.cfg.generateFault; f != nil {
		return f(ctx, r, attempt)
	}
	if a.cfg.poison > 0 && unitHash(r.ID) < a.cfg.poison {
		return errors.New("the renderer crashed on this report (injected by -poison)")
	}
	if a.cfg.flaky > 0 && rand.Float64() < a.cfg.flaky {
		return errors.New("the renderer is overloaded (injected by -flaky)")
	}
	return nil
}

// unitHash maps s to [0, 1), the same way every time.
func unitHash(s string) float64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return float64(h.Sum64()>>11) / (1 << 53)
}

// sendHandler delivers the generated report (simulated) and tells the
// orchestrator. Delivery is recorded, so a redelivered SendReport only
// repeats the ReportSent event.
func (a *app) sendHandler() orderly.Handler {
	return pipeline(func(ctx context.Context, m message) error {
		st, err := a.store.state(ctx, m.ID)
		if err != nil {
			return storeErr(err)
		}
		if st != stateSending {
			return nil // finished already
		}
		done, err := a.store.delivered(ctx, m.ID)
		if err != nil {
			return storeErr(err)
		}
		if !done {
			if err := sleep(ctx, time.Duration(rand.Int64N(int64(2*a.cfg.sendLatency)+1))); err != nil {
				return err
			}
			if _, err := a.store.markDelivered(ctx, m.ID, time.Now()); err != nil {
				return err
			}
		}
		return a.produce(ctx, topicOutcomes, messageFor(eventSent, m.request()))
	}, eventSend)
}

// generateFailures is the generate step's dead-letter sink: the record
// goes to reports.generate.dlq, and a ReportFailed event goes back to the
// orchestrator, which finishes the report and releases its slot. Either
// write failing makes the engine retry both (at least once).
type generateFailures struct {
	dlq *orderlysarama.DeadLetterSink
	a   *app
}

func (s generateFailures) DeadLetter(ctx context.Context, r *orderly.Record, dl orderly.DeadLetter) error {
	if err := s.dlq.DeadLetter(ctx, r, dl); err != nil {
		return err
	}
	m, err := decodeMessage(r, eventGenerate)
	if err != nil {
		return nil // not a report: the dead-letter topic is all there is to do
	}
	f := messageFor(eventFailed, m.request())
	f.Attempts = dl.Attempts
	if dl.Err != nil {
		f.Error = fmt.Sprintf("generation failed after %d attempts: %v", dl.Attempts, dl.Err)
	}
	return s.a.produce(ctx, topicOutcomes, f)
}

// DeadLetterTopic names the dead-letter topic for tracing.
func (s generateFailures) DeadLetterTopic(r *orderly.Record) string { return s.dlq.DeadLetterTopic(r) }

// resumeUnfinished re-produces, for every report the store holds
// unfinished, the event its state waits on. It is for a fresh, empty
// cluster (the embedded one after a restart): the steps are idempotent, so
// each report goes on from where it was. It returns how many it resumed.
func (a *app) resumeUnfinished(ctx context.Context) (int, error) {
	reps, err := a.store.unfinished(ctx)
	if err != nil {
		return 0, err
	}
	for _, rep := range reps {
		req := rep.request()
		var err error
		switch rep.State {
		case stateAccepted:
			err = a.produce(ctx, topicRequests, messageFor(eventRequested, req))
		case stateQueued:
			err = a.produce(ctx, rep.Plan.topic(), messageFor(eventQueued, req))
		case stateGenerating:
			err = a.produce(ctx, topicGenerate, messageFor(eventGenerate, req))
		case stateSending:
			err = a.produce(ctx, topicSend, messageFor(eventSend, req))
		}
		if err != nil {
			return 0, err
		}
	}
	return len(reps), nil
}
