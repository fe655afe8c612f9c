package ring

import (
	"testing"

	"pgregory.net/rapid"
)

// TestRingIsAFIFO checks the ring against a slice under random pushes and
// pops from both ends, across growth and shrinking.
func TestRingIsAFIFO(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var q Ring[int]
		q.Keep = rapid.Bool().Draw(t, "keep")
		var model []int
		next := 0
		for range rapid.IntRange(0, 3000).Draw(t, "steps") {
			switch rapid.IntRange(0, 9).Draw(t, "op") {
			case 0, 1, 2, 3, 4:
				for range rapid.IntRange(1, 300).Draw(t, "burst") {
					q.Push(next)
					model = append(model, next)
					next++
				}
			case 5, 6, 7:
				n := rapid.IntRange(1, 400).Draw(t, "pops")
				for range n {
					v, ok := q.Pop()
					if ok != (len(model) > 0) {
						t.Fatalf("Pop ok %v with %d queued", ok, len(model))
					}
					if !ok {
						break
					}
					if v != model[0] {
						t.Fatalf("Pop %d, want %d", v, model[0])
					}
					model = model[1:]
				}
			case 8:
				v, ok := q.PopBack()
				if ok != (len(model) > 0) {
					t.Fatalf("PopBack ok %v with %d queued", ok, len(model))
				}
				if ok {
					if v != model[len(model)-1] {
						t.Fatalf("PopBack %d, want %d", v, model[len(model)-1])
					}
					model = model[:len(model)-1]
				}
			case 9:
				if len(model) > 0 {
					i := rapid.IntRange(0, len(model)-1).Draw(t, "at")
					if q.At(i) != model[i] {
						t.Fatalf("At(%d) = %d, want %d", i, q.At(i), model[i])
					}
					if h, _ := q.Peek(); h != model[0] {
						t.Fatalf("Peek %d, want %d", h, model[0])
					}
				}
			}
			if q.Len() != len(model) {
				t.Fatalf("Len %d, want %d", q.Len(), len(model))
			}
		}
		i := 0
		q.Each(func(v int) {
			if v != model[i] {
				t.Fatalf("Each at %d: %d, want %d", i, v, model[i])
			}
			i++
		})
	})
}

// TestRingShrinks checks that a ring that held many items gives most of
// their storage back once drained, unless told to keep it.
func TestRingShrinks(t *testing.T) {
	for _, keep := range []bool{false, true} {
		q := Ring[int]{Keep: keep}
		for i := range 100_000 {
			q.Push(i)
		}
		for q.Len() > 10 {
			q.Pop()
		}
		if keep && len(q.buf) < 100_000 {
			t.Fatalf("Keep: storage shrank to %d", len(q.buf))
		}
		if !keep && len(q.buf) > 4*keepCap {
			t.Fatalf("storage of %d slots kept for %d items", len(q.buf), q.Len())
		}
	}
}
