package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// A report is one trace, from the API's produce to the orchestrator's
// release, and every span of it carries the report id as transaction.id.
func TestReportIsOneTraceWithItsTransactionID(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
	cfg := testConfig(t, newCluster(t))
	cfg.tracerProvider = tp
	s := startService(t, cfg)

	id := s.submit(map[string]any{"user": "tracy", "plan": "paid", "kind": "audit"})
	require.Equal(t, stateSent, s.waitTerminal(id).State)

	want := []string{"send reports.requests", "process reports.requests", "process reports.p0",
		"process reports.generate", "process reports.send", "process reports.outcomes"}
	var spans tracetest.SpanStubs
	require.Eventually(t, func() bool {
		spans = spansOf(exp.GetSpans(), id)
		names := map[string]bool{}
		for _, sp := range spans {
			names[sp.Name] = true
		}
		for _, w := range want {
			if !names[w] {
				return false
			}
		}
		return true
	}, waitLong, waitTick, "a span of every step carries the transaction id")
	for _, sp := range spans {
		assert.Equal(t, spans[0].SpanContext.TraceID(), sp.SpanContext.TraceID(), "%s is in the report's trace", sp.Name)
	}
}

// spansOf returns the spans whose transaction.id is id.
func spansOf(all tracetest.SpanStubs, id string) tracetest.SpanStubs {
	var out tracetest.SpanStubs
	for _, sp := range all {
		for _, kv := range sp.Attributes {
			if string(kv.Key) == attributeTransactionID && kv.Value.AsString() == id {
				out = append(out, sp)
			}
		}
	}
	return out
}
