// Command protoactor measures what the protoactor-go bridge
// (bridges/protoactorbridge) costs per record: the same records run through
// an orderly engine with a plain handler and with the bridge handing each
// record to protoactor actors, in one process, and it prints each run, the
// median per mode, the bridge's overhead per record and the ratio of
// throughputs.
//
//	cd bench/protoactor && go run . [flags]
//
// It is a module of its own (github.com/orderly-go/orderly/bench/protoactor)
// so that protoactor-go's dependencies stay out of the other benchmarks'
// builds. See the "protoactor" section of bench/README.md.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/orderly-go/orderly/bench/internal/report"
)

type options struct {
	json        bool
	records     int
	keys        int
	partitions  int
	concurrency int
	rounds      int
	latency     time.Duration
	modes       []string
	timeout     time.Duration
	cpuprofile  string
}

// allModes are the runs of a round, in order: the plain handler first,
// then the bridge with an actor per key, then the bridge to one actor.
var allModes = []string{"plain", "per-key", "target"}

func parseFlags(args []string) (*options, error) {
	fs := flag.NewFlagSet("protoactor", flag.ContinueOnError)
	o := &options{}
	var modes string
	fs.BoolVar(&o.json, "json", false, "one JSON object per result line instead of tables")
	fs.IntVar(&o.records, "records", 100_000, "records per run")
	fs.IntVar(&o.keys, "keys", 1000, "distinct keys, round-robin over the records")
	fs.IntVar(&o.partitions, "partitions", 4, "partitions of the topic")
	fs.IntVar(&o.concurrency, "concurrency", 100, "the engine's WithMaxConcurrency")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds; each runs every mode once, and the summary takes the median")
	fs.DurationVar(&o.latency, "latency", 0, "work per record: the handler (plain) or the actor (bridge) sleeps this long; 0 is a no-op")
	fs.StringVar(&modes, "modes", strings.Join(allModes, ","), "modes to run, in this order: plain, per-key, target")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Minute, "give up on a run not done after this")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of all runs to this file")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	for _, m := range strings.Split(modes, ",") {
		m = strings.TrimSpace(m)
		if !slices.Contains(allModes, m) {
			return nil, fmt.Errorf("-modes: unknown mode %q (plain, per-key, target)", m)
		}
		o.modes = append(o.modes, m)
	}
	if o.records < 1 || o.keys < 1 || o.partitions < 1 || o.concurrency < 1 || o.rounds < 1 || o.latency < 0 {
		return nil, errors.New("-records, -keys, -partitions, -concurrency and -rounds must be positive, -latency ≥ 0")
	}
	return o, nil
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	out := &printer{w: os.Stdout, json: o.json}
	out.machine(report.ReadMachine())
	if o.cpuprofile != "" {
		f, err := os.Create(o.cpuprofile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "protoactor: -cpuprofile:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	runs, err := runAll(o)
	if err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "protoactor:", err)
		os.Exit(1)
	}
	out.print(fmt.Sprintf("runs: %d records, %d keys, %d partitions, concurrency %d, latency %v",
		o.records, o.keys, o.partitions, o.concurrency, o.latency), runs)
	out.print("summary: median of each mode; overhead = ns/record − plain's; ratio = records/s ÷ plain's", summarize(runs))
}
