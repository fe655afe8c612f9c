package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/orderly-go/orderly"
)

// plan is a customer's plan; it decides the report's priority, numbered
// as orderly numbers priority levels: 0 is the highest.
type plan string

const (
	planPaid plan = "paid" // priority 0
	planFree plan = "free" // priority 1
	planCron plan = "cron" // priority 2: scheduled jobs, nobody is waiting
)

// plans lists the plans in priority order, highest first.
var plans = []plan{planPaid, planFree, planCron}

func (p plan) valid() bool { return p == planPaid || p == planFree || p == planCron }

// priority is 0 (paid), 1 (free) or 2 (cron).
func (p plan) priority() int {
	switch p {
	case planPaid:
		return 0
	case planFree:
		return 1
	}
	return 2
}

// topic is the priority topic triage routes the plan's reports to.
func (p plan) topic() string { return fmt.Sprintf("%s.p%d", topicPrefix, p.priority()) }

// kinds are the reports one can ask for.
var kinds = []string{"usage", "billing", "audit", "activity"}

func validKind(k string) bool {
	for _, x := range kinds {
		if x == k {
			return true
		}
	}
	return false
}

// state is where a report is. States only move forward (see rank), which
// is what makes every status update idempotent.
type state string

const (
	stateAccepted   state = "accepted"   // durably in reports.requests
	stateQueued     state = "queued"     // triaged into its priority topic
	stateGenerating state = "generating" // started: holds a WIP slot of its plan
	stateSending    state = "sending"    // generated; the send step has it
	stateSent       state = "sent"       // the orchestrator saw ReportSent: slot released
	stateFailed     state = "failed"     // generation failed for good: slot released
)

// states lists every state in rank order.
var states = []state{stateAccepted, stateQueued, stateGenerating, stateSending, stateSent, stateFailed}

// rank orders the states; an update to a state of lower or equal rank than
// the current one changes nothing. Both terminal states rank highest: the
// first one reached stays.
func (s state) rank() int {
	switch s {
	case stateAccepted:
		return 0
	case stateQueued:
		return 1
	case stateGenerating:
		return 2
	case stateSending:
		return 3
	case stateSent, stateFailed:
		return 4
	}
	return -1
}

func (s state) terminal() bool { return s == stateSent || s == stateFailed }

// holdsSlot reports whether a report in this state holds a WIP slot: from
// the moment the orchestrator starts it until its outcome comes back.
func (s state) holdsSlot() bool { return s == stateGenerating || s == stateSending }

// Topics. Every record's key is the report id, so all events of a report
// land in one partition of each topic and are handled in order.
const (
	topicPrefix    = "reports"
	topicRequests  = topicPrefix + ".requests" // ReportRequested, from the API
	topicGenerate  = topicPrefix + ".generate" // GenerateReport, from the orchestrator
	topicSend      = topicPrefix + ".send"     // SendReport, from the generate step
	topicOutcomes  = topicPrefix + ".outcomes" // ReportSent / ReportFailed, back to the orchestrator
	topicWebhooks  = topicPrefix + ".webhooks" // WebhookDue, from the orchestrator
	deadLetterTail = ".dlq"                    // <topic>.dlq: records that failed for good
)

// allTopics is every topic the service reads or writes, dead-letter topics
// included.
func allTopics() []string {
	var ts []string
	for _, t := range consumedTopics() {
		ts = append(ts, t, t+deadLetterTail)
	}
	return ts
}

func consumedTopics() []string {
	ts := []string{topicRequests}
	for _, p := range plans {
		ts = append(ts, p.topic())
	}
	return append(ts, topicGenerate, topicSend, topicOutcomes, topicWebhooks)
}

// Event types, in the event-type header and the message's type field.
const (
	eventRequested = "ReportRequested"
	eventQueued    = "ReportQueued"
	eventGenerate  = "GenerateReport"
	eventSend      = "SendReport"
	eventSent      = "ReportSent"
	eventFailed    = "ReportFailed"
	eventWebhook   = "WebhookDue"
)

// Headers of every event. The transaction id is the report id: it is set on
// every event of a report and put on every span that handles one.
const (
	headerTransactionID = "transaction-id"
	headerEventType     = "event-type"
)

// message is the value of every event: the report's request, which every
// step may need (triage routes by plan, the orchestrator releases the
// plan's slot), plus what the event adds.
type message struct {
	Type       string    `json:"type"`
	ID         string    `json:"id"`
	User       string    `json:"user"`
	Plan       plan      `json:"plan"`
	Kind       string    `json:"kind"`
	Webhook    string    `json:"webhook_url,omitempty"`
	AcceptedAt time.Time `json:"accepted_at"`
	Attempts   int       `json:"attempts,omitempty"` // ReportFailed: generate attempts made
	Error      string    `json:"error,omitempty"`    // ReportFailed: the last attempt's error
}

func messageFor(typ string, r request) message {
	return message{Type: typ, ID: r.ID, User: r.User, Plan: r.Plan, Kind: r.Kind, Webhook: r.Webhook, AcceptedAt: r.AcceptedAt}
}

func (m message) request() request {
	return request{ID: m.ID, User: m.User, Plan: m.Plan, Kind: m.Kind, Webhook: m.Webhook, AcceptedAt: m.AcceptedAt}
}

func (m message) encode() (key, value []byte, headers []orderly.Header) {
	value, err := json.Marshal(m)
	if err != nil {
		panic(err) // a message of strings, ints and a time always marshals
	}
	return []byte(m.ID), value, []orderly.Header{
		{Key: headerTransactionID, Value: []byte(m.ID)},
		{Key: headerEventType, Value: []byte(m.Type)},
	}
}

// decodeMessage reads a record of one of want's types. Its errors make the
// record permanent (orderly.Pipeline's Decode): it goes to the dead-letter
// topic without retries.
func decodeMessage(r *orderly.Record, want ...string) (message, error) {
	var m message
	if err := json.Unmarshal(r.Value, &m); err != nil {
		return m, fmt.Errorf("decode %s: %w", r.Topic, err)
	}
	ok := false
	for _, w := range want {
		ok = ok || m.Type == w
	}
	switch {
	case !ok:
		return m, fmt.Errorf("decode %s: unexpected event type %q (want %v)", r.Topic, m.Type, want)
	case m.ID == "":
		return m, errors.New("decode: event without a report id")
	case !m.Plan.valid():
		return m, fmt.Errorf("decode: event of report %s has unknown plan %q", m.ID, m.Plan)
	}
	if tx, found := r.Header(headerTransactionID); found && string(tx) != m.ID {
		return m, fmt.Errorf("decode: transaction id %q does not match report id %q", tx, m.ID)
	}
	return m, nil
}

// request is what a client asked for, as stored and carried by the events.
type request struct {
	ID         string
	User       string
	Plan       plan
	Kind       string
	Webhook    string
	AcceptedAt time.Time
}
