package main

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// procStatusMB returns a kB field of /proc/self/status (VmHWM: the peak
// resident set; VmRSS: the current one) in MB (10^6 bytes), or 0 where
// there is no /proc.
func procStatusMB(field string) float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), ":")
		if !ok || k != field {
			continue
		}
		kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		if err != nil {
			return 0
		}
		return kb * 1024 / 1e6
	}
	return 0
}
