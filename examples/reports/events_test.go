package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderly-go/orderly"
)

func TestDecodeMessage(t *testing.T) {
	m := messageFor(eventQueued, request{ID: "r1", User: "u", Plan: planPaid, Kind: "usage", AcceptedAt: time.Now().UTC()})
	key, value, headers := m.encode()
	rec := &orderly.Record{Topic: "t", Key: key, Value: value, Headers: headers}
	got, err := decodeMessage(rec, eventQueued)
	require.NoError(t, err)
	assert.Equal(t, m.request(), got.request())

	for name, rec := range map[string]*orderly.Record{
		"not JSON":          {Value: []byte("{")},
		"wrong type":        {Value: value, Headers: headers},
		"no id":             {Value: []byte(`{"type":"ReportQueued","plan":"paid"}`)},
		"bad plan":          {Value: []byte(`{"type":"ReportQueued","id":"x","plan":"gold"}`)},
		"other transaction": {Value: value, Headers: []orderly.Header{{Key: headerTransactionID, Value: []byte("r2")}}},
	} {
		want := eventQueued
		if name == "wrong type" {
			want = eventSent
		}
		_, err := decodeMessage(rec, want)
		assert.Error(t, err, name)
	}
}

func TestParseLoad(t *testing.T) {
	spec, err := parseLoad("cron=200, free=50,paid=10")
	require.NoError(t, err)
	assert.Equal(t, loadSpec{planCron: 200, planFree: 50, planPaid: 10}, spec)
	assert.Equal(t, "paid=10,free=50,cron=200 per minute", spec.String())
	spec, err = parseLoad("")
	require.NoError(t, err)
	assert.Equal(t, "none", spec.String())
	for _, bad := range []string{"gold=1", "cron", "cron=-1", "cron=x", "cron=1,cron=2", "cron=1e9"} {
		_, err := parseLoad(bad)
		assert.Error(t, err, bad)
	}
}

// A receiver accepts a webhook signed with the secret, and refuses one
// whose body, id or timestamp was changed, or that is too old.
func TestVerifyWebhook(t *testing.T) {
	secret, body, now := []byte("k"), []byte(`{"type":"report.sent"}`), time.Now()
	h := http.Header{}
	h.Set(headerWebhookID, "r1.sent")
	h.Set(headerWebhookTimestamp, "1700000000")
	ts := time.Unix(1700000000, 0)
	h.Set(headerWebhookSignature, sign(secret, "r1.sent", "1700000000", body))
	require.NoError(t, verifyWebhook(secret, h, body, ts, time.Minute))
	assert.Error(t, verifyWebhook(secret, h, body, now, time.Minute), "too old")
	assert.Error(t, verifyWebhook(secret, h, []byte(strings.Replace(string(body), "sent", "failed", 1)), ts, time.Minute))
	h2 := h.Clone()
	h2.Set(headerWebhookID, "r2.sent")
	assert.Error(t, verifyWebhook(secret, h2, body, ts, time.Minute))
	h3 := h.Clone()
	h3.Set(headerWebhookSignature, "v1,bm9wZQ== "+h.Get(headerWebhookSignature))
	assert.NoError(t, verifyWebhook(secret, h3, body, ts, time.Minute), "any of several signatures")
}
