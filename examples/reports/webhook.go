package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/orderly-go/orderly"
)

// Webhooks follow the Standard Webhooks scheme: the receiver gets
//
//	webhook-id:        <report id>.<state>   (also Idempotency-Key: the same for every retry)
//	webhook-timestamp: <unix seconds of this attempt>
//	webhook-signature: v1,<base64 of HMAC-SHA256(secret, id + "." + timestamp + "." + body)>
//
// and a JSON body {"type": "report.sent" | "report.failed", "report": {...}}
// that is the same on every attempt. Delivery is at least once: a
// receiver that sees an id twice ignores the second.
const (
	headerWebhookID        = "webhook-id"
	headerWebhookTimestamp = "webhook-timestamp"
	headerWebhookSignature = "webhook-signature"
	headerIdempotencyKey   = "Idempotency-Key"
)

// webhookPayload is the body of a webhook.
type webhookPayload struct {
	Type   string `json:"type"`
	Report report `json:"report"`
}

// webhookHandler delivers a finished report's webhook; failed attempts
// are retried with backoff by the engine (-webhook-attempts), then the
// record goes to reports.webhooks.dlq. Each attempt is recorded in the
// store, where GET /reports/{id} shows it.
func (a *app) webhookHandler() orderly.Handler {
	return pipeline(func(ctx context.Context, m message) error {
		rep, err := a.store.get(ctx, m.ID)
		if err != nil {
			return storeErr(err)
		}
		switch {
		case rep.Webhook == nil, rep.Webhook.DeliveredAt != nil:
			return nil // none, or delivered before
		case !rep.terminal():
			return orderly.Permanent(fmt.Errorf("webhook of report %s due in state %s", rep.ID, rep.State))
		}
		attempt := attemptOf(ctx)
		sendErr := a.sendWebhook(ctx, rep)
		errText := ""
		if sendErr != nil {
			errText = sendErr.Error()
			if attempt >= a.cfg.webhookTries || orderly.IsPermanent(sendErr) {
				errText = fmt.Sprintf("gave up after %d attempts: %s", attempt, errText)
			}
		}
		if err := a.store.noteWebhook(context.WithoutCancel(ctx), rep.ID, attempt, time.Now(), errText); err != nil {
			a.log.Warn("recording a webhook attempt", slog.String("report", rep.ID), slog.Any("error", err))
		}
		return sendErr
	}, eventWebhook)
}

// sendWebhook makes one delivery attempt. Network errors, 408, 425, 429
// and 5xx answers are worth retrying (after Retry-After, if the receiver
// says so); any other non-2xx answer, redirects included, is permanent.
func (a *app) sendWebhook(ctx context.Context, rep report) error {
	url := rep.Webhook.URL
	payload := webhookPayload{Type: "report." + string(rep.State), Report: rep}
	payload.Report.Webhook = nil // the delivery's own progress is not part of it
	body, err := json.Marshal(payload)
	if err != nil {
		return orderly.Permanent(err)
	}
	id := rep.ID + "." + string(rep.State)
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return orderly.Permanent(fmt.Errorf("webhook %s: %w", url, err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "orderly-reports-webhooks/1")
	req.Header.Set(headerWebhookID, id)
	req.Header.Set(headerIdempotencyKey, id)
	req.Header.Set(headerWebhookTimestamp, ts)
	req.Header.Set(headerWebhookSignature, sign(a.cfg.webhookSecret, id, ts, body))
	client := *a.webhooks
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook %s: %w", url, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return nil
	case code == http.StatusRequestTimeout, code == http.StatusTooEarly, code == http.StatusTooManyRequests, code >= 500:
		err := fmt.Errorf("webhook %s: %s", url, resp.Status)
		if s, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil && s > 0 {
			return orderly.RetryAfter(err, min(time.Duration(s)*time.Second, time.Minute))
		}
		return err
	default:
		return orderly.Permanent(fmt.Errorf("webhook %s: %s", url, resp.Status))
	}
}

// sign returns the webhook-signature header value of a webhook.
func sign(secret []byte, id, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(id + "." + timestamp + "."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// verifyWebhook is what a receiver does with a webhook: it checks the
// signature (any of the space-separated v1 signatures may match) and that
// the timestamp is within tolerance of now, against replays.
func verifyWebhook(secret []byte, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	id, ts := h.Get(headerWebhookID), h.Get(headerWebhookTimestamp)
	sec, err := strconv.ParseInt(ts, 10, 64)
	if id == "" || err != nil {
		return errors.New("webhook without a valid id or timestamp")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("webhook timestamp %s is %v away from now", ts, d)
	}
	want := sign(secret, id, ts, body)
	for _, got := range strings.Fields(h.Get(headerWebhookSignature)) {
		if hmac.Equal([]byte(got), []byte(want)) {
			return nil
		}
	}
	return errors.New("webhook signature does not match")
}
