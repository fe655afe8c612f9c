package otlpsetup_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/tracing"
	"github.com/orderly-go/orderly/tracing/otlpsetup"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
)

// Without an OTLP endpoint FromEnv exports nothing and changes no
// provider; with one, spans reach it.
func TestFromEnv(t *testing.T) {
	for _, v := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER"} {
		t.Setenv(v, "")
	}
	before := otel.GetTracerProvider()
	shutdown, err := otlpsetup.FromEnv(context.Background(), "test")
	require.NoError(t, err)
	require.NoError(t, shutdown(context.Background()))
	assert.Equal(t, before, otel.GetTracerProvider())

	var traces, metrics atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch req.URL.Path {
		case "/v1/traces":
			traces.Add(1)
		case "/v1/metrics":
			metrics.Add(1)
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	shutdown, err = otlpsetup.FromEnv(context.Background(), "test")
	require.NoError(t, err)
	defer func() { otel.SetTracerProvider(before) }()
	h := tracing.New()
	rec := &orderly.Record{Topic: "orders"}
	info := orderly.RecordInfo{Attempt: 1, Started: time.Now()}
	h.OnAttemptFinished(h.OnAttemptStarted(context.Background(), rec, info), rec, info, nil)
	require.NoError(t, shutdown(context.Background()))
	assert.Positive(t, traces.Load(), "spans exported")
	assert.Positive(t, metrics.Load(), "metrics exported")
}
