package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/orderly-go/orderly/bench/internal/report"
)

// options are the command-line flags; zero means "the scenario's default"
// where the doc says so.
type options struct {
	json        bool
	records     int
	rows        string
	concurrency int
	seed        uint64
	chart       string
	cpuprofile  string
	timeout     time.Duration
	hotShare    float64
	inProcess   bool
	inspect     inspection
	source      string
	client      string
	p1Rate      float64
	procs       []int // -procs: run every scenario at each of these GOMAXPROCS

	concurrencySet bool // -concurrency was given (priority-flood has its own default)
}

func (o *options) recordsOr(def int) int {
	if o.records > 0 {
		return o.records
	}
	return def
}

// scenarios are the scenarios in the order "all" runs them. records is
// the default of -records for the help text: it must match the default the
// scenario's run function passes to recordsOr.
var scenarios = []struct {
	name    string
	records int
	run     func(*options, *printer) error
}{
	{"pc-table", 10000, runPCTable},
	{"overhead", 2_000_000, runOverhead},
	{"keys-1m", 2 * keys1MKeys, runKeys1M},
	{"hot-key", 20000, runHotKey},
	{"hot-key-kafka", 20000, runHotKeyKafka},
	{"tracing-overhead", 500_000, runTracingOverhead},
	{"kafka-overhead", 1_000_000, runKafkaOverhead},
	{"pc-table-kafka", 10000, runPCTableKafka},
	{"poison", 20000, runPoison},
	{"priority-flood", 10000, runPriorityFlood},
}

// scenarioList lists the scenarios' names, with their default record
// counts if withRecords ("pc-table 10000, overhead 2000000, ...").
func scenarioList(withRecords bool) string {
	var b strings.Builder
	for i, s := range scenarios {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(s.name)
		if withRecords {
			b.WriteString(" " + strconv.Itoa(s.records))
		}
	}
	return b.String()
}

func usage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintln(w, "usage: go run ./bench <scenario> [flags]")
	fmt.Fprintln(w, "scenarios: "+scenarioList(false)+", all")
	fs.SetOutput(w)
	fs.PrintDefaults()
}

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.BoolVar(&o.json, "json", false, "print one JSON object per result (and one for the machine) instead of tables")
	fs.IntVar(&o.records, "records", 0, "records per run (0: the scenario's default: "+scenarioList(true)+")")
	fs.StringVar(&o.rows, "rows", "all", "pc-table rows: comma list of serial, unordered, key-N (or N)")
	fs.IntVar(&o.concurrency, "concurrency", 100, "WithMaxConcurrency for every run")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the generated latencies")
	fs.StringVar(&o.chart, "chart", "", "pc-table: write a PNG chart of the rows to this file")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of the scenarios run in this process to this file")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "give up on a run that has not finished after this long")
	fs.Float64Var(&o.hotShare, "hot-share", 0.5, "hot-key, hot-key-kafka: the hot key's share of the records")
	fs.StringVar(&o.source, "source", "both", "keys-1m: memory (records produced into adapters/memory first), stream (generated on the fly), or both")
	fs.StringVar(&o.client, "client", "both", "kafka-overhead, pc-table-kafka, hot-key-kafka: the Kafka client, sarama, franz (franz-go) or both")
	fs.Func("inspect", "overhead: mount the inspector (package inspect) on a loopback server: mounted (never requested), or a polling interval such as 1s", func(s string) error {
		in, err := parseInspection(s)
		o.inspect = in
		return err
	})
	fs.Float64Var(&o.p1Rate, "p1-rate", 2000, "priority-flood: P1 records produced per second during the burst (0: all at once)")
	fs.Func("procs", "run every scenario at each of these GOMAXPROCS, a comma list such as 1,2 (default: the current one); every row carries its procs", func(s string) error {
		o.procs = nil
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 {
				return fmt.Errorf("-procs %q: give positive integers", s)
			}
			o.procs = append(o.procs, n)
		}
		return nil
	})
	fs.BoolVar(&o.inProcess, "in-process", false, "keys-1m: run in this process instead of a fresh child process (the child protocol uses it)")
	fs.Usage = func() { usage(os.Stderr, fs) }
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		usage(os.Stderr, fs)
		return fmt.Errorf("no scenario given")
	}
	scenario := fs.Arg(0)
	if err := fs.Parse(fs.Args()[1:]); err != nil { // flags after the scenario
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.concurrency < 1 {
		return fmt.Errorf("-concurrency must be ≥ 1")
	}
	fs.Visit(func(f *flag.Flag) { o.concurrencySet = o.concurrencySet || f.Name == "concurrency" })

	var todo []func(*options, *printer) error
	for _, s := range scenarios {
		if scenario == s.name || scenario == "all" {
			todo = append(todo, s.run)
		}
	}
	if len(todo) == 0 {
		usage(os.Stderr, fs)
		return fmt.Errorf("unknown scenario %q", scenario)
	}

	out := &printer{w: stdout, json: o.json}
	if !o.inProcess {
		out.machine(report.ReadMachine())
	}
	if o.cpuprofile != "" {
		f, err := os.Create(o.cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	procs := o.procs
	if len(procs) == 0 {
		procs = []int{runtime.GOMAXPROCS(0)}
	}
	was := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(was)
	for _, n := range procs {
		runtime.GOMAXPROCS(n)
		for _, run := range todo {
			if err := run(&o, out); err != nil {
				return err
			}
		}
	}
	if o.chart != "" {
		if err := writePCChart(o.chart, out.latest); err != nil {
			return fmt.Errorf("chart: %w", err)
		}
		if !o.json {
			fmt.Fprintln(stdout, "\nchart written to", o.chart)
		}
	}
	return nil
}
