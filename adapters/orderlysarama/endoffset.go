package orderlysarama

// EndOffset is the partition's high water mark as of the last fetch; it
// makes the claim an orderly.EndOffsetter, so engine stats report lag.
func (c *claim) EndOffset() int64 { return c.sc.HighWaterMarkOffset() }

// GroupName is the consumer group; it makes the source an
// orderly.GroupNamer, so hooks see the group.
func (s *Source) GroupName() string { return s.group }
