package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// submission is the body of POST /reports.
type submission struct {
	// ID is optional: a client-chosen id makes the POST idempotent (a
	// repeat returns the same report). 1–64 of A–Z a–z 0–9 . _ : -
	ID   string `json:"id,omitempty"`
	User string `json:"user"` // 1–64 characters, no control characters
	Plan string `json:"plan"` // paid, free or cron
	Kind string `json:"kind"` // usage, billing, audit or activity
	// Webhook is optional: an http or https URL that gets the outcome.
	Webhook string `json:"webhook_url,omitempty"`
}

// submissionField is one field of the body; an optional one may be absent
// or null.
type submissionField struct {
	name     string
	optional bool
	field    func(*submission) *string
}

// submissionFields are the body's fields, in the order problems are named.
var submissionFields = []submissionField{
	{"id", true, func(s *submission) *string { return &s.ID }},
	{"user", false, func(s *submission) *string { return &s.User }},
	{"plan", false, func(s *submission) *string { return &s.Plan }},
	{"kind", false, func(s *submission) *string { return &s.Kind }},
	{"webhook_url", true, func(s *submission) *string { return &s.Webhook }},
}

// badRequest is a body that is not a valid report request: every problem
// found, each in the API's own words (field names and JSON types, never
// the service's).
type badRequest struct{ problems []string }

func (e *badRequest) Error() string { return strings.Join(e.problems, "; ") }

// decodeSubmission reads the body of POST /reports and returns the
// request it makes, or a *badRequest naming every problem of its fields at
// once (an unknown field does not hide the others), or the reader's error
// (such as *http.MaxBytesError).
func decodeSubmission(body io.Reader) (request, error) {
	dec := json.NewDecoder(body)
	var fields map[string]json.RawMessage
	if err := dec.Decode(&fields); err != nil {
		var syntax *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.Is(err, io.EOF):
			return request{}, &badRequest{[]string{"the body is empty: it must be a JSON object with user, plan and kind"}}
		case errors.Is(err, io.ErrUnexpectedEOF):
			return request{}, &badRequest{[]string{"the body is not valid JSON: it ends in the middle of a value"}}
		case errors.As(err, &syntax):
			return request{}, &badRequest{[]string{fmt.Sprintf("the body is not valid JSON: %s (at byte %d)", syntax.Error(), syntax.Offset)}}
		case errors.As(err, &typ):
			return request{}, &badRequest{[]string{"the body must be a JSON object, not " + article(typ.Value)}}
		}
		return request{}, err // reading the body failed
	}
	if fields == nil {
		return request{}, &badRequest{[]string{"the body must be a JSON object, not null"}}
	}
	if _, err := dec.Token(); err != io.EOF {
		return request{}, &badRequest{[]string{"the body must hold one JSON object and nothing after it"}}
	}

	var s submission
	named := map[string]string{} // field → its problem
	for _, f := range submissionFields {
		raw, ok := fields[f.name]
		switch t := jsonType(raw); {
		case !ok && f.optional, ok && f.optional && t == "null":
		case !ok:
			named[f.name] = f.name + " is missing"
		case t != "string":
			named[f.name] = fmt.Sprintf("%s must be a string, not %s", f.name, article(t))
		default:
			if err := json.Unmarshal(raw, f.field(&s)); err != nil {
				named[f.name] = f.name + " is not a valid JSON string"
			}
		}
	}
	for name, problem := range s.problems() {
		if _, ok := named[name]; !ok {
			named[name] = problem
		}
	}
	var problems []string
	for _, f := range submissionFields {
		if p, ok := named[f.name]; ok {
			problems = append(problems, p)
		}
	}
	var unknown []string
	for name := range fields {
		if !slices.ContainsFunc(submissionFields, func(f submissionField) bool { return f.name == name }) {
			unknown = append(unknown, name)
		}
	}
	slices.Sort(unknown)
	for _, name := range unknown {
		problems = append(problems, fmt.Sprintf("unknown field %q (the fields are id, user, plan, kind and webhook_url)", name))
	}
	if len(problems) > 0 {
		return request{}, &badRequest{problems}
	}
	return request{ID: s.ID, User: s.User, Plan: plan(s.Plan), Kind: s.Kind, Webhook: s.Webhook}, nil
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

// problems returns what is wrong with the fields' values, by field name.
func (s submission) problems() map[string]string {
	problems := map[string]string{}
	if s.ID != "" && !idPattern.MatchString(s.ID) {
		problems["id"] = "id must be 1–64 characters of A–Z a–z 0–9 . _ : -"
	}
	if n := utf8.RuneCountInString(s.User); n == 0 || n > 64 || !utf8.ValidString(s.User) ||
		strings.IndexFunc(s.User, unicode.IsControl) >= 0 || strings.TrimSpace(s.User) == "" {
		problems["user"] = "user must be 1–64 characters without control characters"
	}
	if !plan(s.Plan).valid() {
		problems["plan"] = fmt.Sprintf("plan must be paid, free or cron, not %q", s.Plan)
	}
	if !validKind(s.Kind) {
		problems["kind"] = fmt.Sprintf("kind must be one of %s, not %q", strings.Join(kinds, ", "), s.Kind)
	}
	if s.Webhook != "" {
		u, err := url.Parse(s.Webhook)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(s.Webhook) > 2048 {
			problems["webhook_url"] = "webhook_url must be an absolute http or https URL of at most 2048 bytes"
		}
	}
	return problems
}

// jsonType names the JSON type of a well-formed value.
func jsonType(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

// article puts "a" or "an" before a JSON type's name ("null" stays bare).
func article(t string) string {
	switch t {
	case "null", "nothing":
		return t
	case "bool":
		t = "boolean"
	}
	if strings.IndexByte("aeiou", t[0]) >= 0 {
		return "an " + t
	}
	return "a " + t
}
