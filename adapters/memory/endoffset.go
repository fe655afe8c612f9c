package memory

// EndOffset is the offset the partition's next record will get; it makes
// the claim an orderly.EndOffsetter, so engine stats report lag.
func (c *claim) EndOffset() int64 {
	end, err := c.log.EndOffset(c.tp.Topic, c.tp.Partition)
	if err != nil {
		return -1
	}
	return end
}

// GroupName is the member's consumer group; it makes the member an
// orderly.GroupNamer, so hooks see the group.
func (m *Member) GroupName() string { return m.group }
