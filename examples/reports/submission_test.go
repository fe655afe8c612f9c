package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// goWords are what a client must never read in an error: the service's Go
// types and the decoder's phrasing.
var goWords = []string{"Go value", "Go struct", "main.", "submission", "unmarshal", "json:"}

// problemsOf decodes body and returns the problems it is refused for.
func problemsOf(t *testing.T, body string) []string {
	t.Helper()
	_, err := decodeSubmission(strings.NewReader(body))
	var bad *badRequest
	require.True(t, errors.As(err, &bad), "refused as a bad request: %v", err)
	for _, p := range bad.problems {
		for _, w := range goWords {
			assert.NotContains(t, p, w, "in the API's words, not Go's")
		}
	}
	return bad.problems
}

// A body that is not a report request is refused in the API's own words:
// field names and JSON types, never the service's Go types.
func TestSubmissionErrorsAreInTheAPIsWords(t *testing.T) {
	for body, want := range map[string][]string{
		`[1,2]`:      {"the body must be a JSON object, not an array"},
		`"a report"`: {"the body must be a JSON object, not a string"},
		`42`:         {"the body must be a JSON object, not a number"},
		`true`:       {"the body must be a JSON object, not a boolean"},
		`null`:       {"the body must be a JSON object, not null"},
		``:           {"the body is empty: it must be a JSON object with user, plan and kind"},
		`{"user":`:   {"the body is not valid JSON: it ends in the middle of a value"},
		`{"user":"a","plan":"paid","kind":"usage"}{}`: {"the body must hold one JSON object and nothing after it"},
		`{"user": 7, "plan": ["paid"], "kind": {"name": "usage"}, "webhook_url": false}`: {
			"user must be a string, not a number",
			"plan must be a string, not an array",
			"kind must be a string, not an object",
			"webhook_url must be a string, not a boolean",
		},
		`{"user": null, "plan": "paid", "kind": "usage"}`: {"user must be a string, not null"},
	} {
		assert.Equal(t, want, problemsOf(t, body), "body %s", body)
	}
	got := problemsOf(t, `{"user":"a",}`)
	require.Len(t, got, 1)
	assert.True(t, strings.HasPrefix(got[0], "the body is not valid JSON: invalid character '}'"), got[0])
}

// Every problem is named at once, in the order of the fields, and an
// unknown field does not hide the problems of the known ones.
func TestSubmissionNamesEveryProblemAtOnce(t *testing.T) {
	assert.Equal(t, []string{
		"id must be 1–64 characters of A–Z a–z 0–9 . _ : -",
		"user must be 1–64 characters without control characters",
		`plan must be paid, free or cron, not "gold"`,
		"kind is missing",
		"webhook_url must be an absolute http or https URL of at most 2048 bytes",
		`unknown field "colour" (the fields are id, user, plan, kind and webhook_url)`,
		`unknown field "priority" (the fields are id, user, plan, kind and webhook_url)`,
	}, problemsOf(t, `{"priority": 0, "id": "a/b", "user": "", "plan": "gold", "webhook_url": "ftp://x", "colour": "red"}`))

	// An unknown field alone is named, the request being otherwise good.
	assert.Equal(t, []string{`unknown field "priority" (the fields are id, user, plan, kind and webhook_url)`},
		problemsOf(t, `{"user": "a", "plan": "paid", "kind": "usage", "priority": 0}`))
}

// A good body makes its request; the optional fields may be absent or
// null.
func TestSubmissionAcceptsAGoodBody(t *testing.T) {
	req, err := decodeSubmission(strings.NewReader(`{"id": "r-1", "user": "ada", "plan": "paid", "kind": "usage", "webhook_url": "https://example.com/hook"}`))
	require.NoError(t, err)
	assert.Equal(t, request{ID: "r-1", User: "ada", Plan: planPaid, Kind: "usage", Webhook: "https://example.com/hook"}, req)

	req, err = decodeSubmission(strings.NewReader(`{"id": null, "user": "ada", "plan": "cron", "kind": "audit", "webhook_url": null}`))
	require.NoError(t, err)
	assert.Equal(t, request{User: "ada", Plan: planCron, Kind: "audit"}, req)
}
