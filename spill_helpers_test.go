package orderly_test

import (
	"context"

	"github.com/orderly-go/orderly"
)

// noReread is a Source whose claims hide every optional interface of the
// wrapped source's claims (orderly.Rereader among them): the engine then
// pauses a partition for a key over its buffer instead of spilling it.
type noReread struct{ orderly.Source }

func (s noReread) Consume(ctx context.Context, serve func(orderly.Claim)) error {
	return s.Source.Consume(ctx, func(c orderly.Claim) { serve(plainClaim{c}) })
}

type plainClaim struct{ orderly.Claim }
