package report

import (
	"testing"
	"time"
)

func TestLimit(t *testing.T) {
	d := []time.Duration{1, 2, 3, 4, 5, 6}
	// Serial per partition (records i%2): largest partition sum is 2+4+6.
	lim, total := Limit(d, func(i int) int { return i % 2 }, 2)
	if lim != 12 || total != 21 {
		t.Fatalf("Limit = %v, total = %v; want 12, 21", lim, total)
	}
	// One unit per record, concurrency 2: Σ/2 wins.
	lim, _ = Limit(d, func(i int) int { return i }, 2)
	if lim != 10 {
		t.Fatalf("Limit = %v; want 10 (21/2 truncated)", lim)
	}
	// No unit (unordered), concurrency 100: the largest record wins.
	lim, _ = Limit(d, func(int) int { return -1 }, 100)
	if lim != 6 {
		t.Fatalf("Limit = %v; want 6 (the largest record)", lim)
	}
}

func TestLatencies(t *testing.T) {
	a, b := Latencies(1000, 1), Latencies(1000, 1)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("Latencies(1000, 1) differ at %d: %v, %v", i, a[i], b[i])
		}
		if a[i] < 0 || a[i] >= 5*time.Millisecond {
			t.Fatalf("Latencies(1000, 1)[%d] = %v, not in [0, 5ms)", i, a[i])
		}
	}
}
