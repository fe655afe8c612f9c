package tracing_test

import (
	"context"
	"testing"
	"time"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/tracing"
	"github.com/stretchr/testify/require"
)

// The record's span carries its priority level.
func TestProcessSpanCarriesThePriority(t *testing.T) {
	r := newRig(t)
	rec := &orderly.Record{Topic: "reports.cron", Offset: 7}
	info := orderly.RecordInfo{Started: time.Now(), Dispatched: time.Now(), Attempt: 1, Priority: 2, RunPriority: 0}
	ctx := r.hooks.OnAttemptStarted(context.Background(), rec, info)
	r.hooks.OnAttemptFinished(ctx, rec, info, nil)
	s := r.one(t, "process reports.cron")
	require.Equal(t, int64(2), attrs(s.Attributes())[tracing.PriorityKey].AsInt64())
}
