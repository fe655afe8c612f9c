package main

import (
	"bufio"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// runAsDemo, set in the environment, makes the test binary the demo
// program itself (TestMain runs main): a test starts it as a process of
// its own and sends it signals as a terminal or an orchestrator would.
const runAsDemo = "ORDERS_TEST_RUN_AS_DEMO"

func TestMain(m *testing.M) {
	if os.Getenv(runAsDemo) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// program is the demo running as a process of its own.
type program struct {
	cmd    *exec.Cmd
	stdout lockedBuilder
	stderr lockedBuilder
	// flowing is closed at the first line of stdout that matches the
	// pattern given to startProgram.
	flowing chan struct{}
	exited  chan struct{} // closed once the process has exited (err)
	err     error
}

// startProgram runs the demo with args; the process is killed when the
// test ends, if it has not exited by then.
func startProgram(t *testing.T, flowingLine *regexp.Regexp, args ...string) *program {
	t.Helper()
	p := &program{cmd: exec.Command(os.Args[0], args...), flowing: make(chan struct{}), exited: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), runAsDemo+"=1")
	p.cmd.Stderr = &p.stderr
	stdout, err := p.cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, p.cmd.Start())
	go func() {
		sc := bufio.NewScanner(stdout)
		flowing := false
		for sc.Scan() {
			p.stdout.Write([]byte(sc.Text() + "\n"))
			if !flowing && flowingLine.MatchString(sc.Text()) {
				flowing = true
				close(p.flowing)
			}
		}
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

// waitFlowing waits for the line startProgram watches for.
func (p *program) waitFlowing(t *testing.T, within time.Duration) {
	t.Helper()
	select {
	case <-p.flowing:
	case <-p.exited:
		t.Fatalf("the demo exited (%v) before records flowed:\n%s\n%s", p.err, p.stdout.String(), p.stderr.String())
	case <-time.After(within):
		t.Fatalf("no records flowed within %v:\n%s\n%s", within, p.stdout.String(), p.stderr.String())
	}
}

// waitExit waits for the process to exit and returns its error (nil:
// exit status 0) and its standard output.
func (p *program) waitExit(t *testing.T, within time.Duration) (string, error) {
	t.Helper()
	select {
	case <-p.exited:
		return p.stdout.String(), p.err
	case <-time.After(within):
		t.Fatalf("the demo did not exit within %v of the signal:\n%s\n%s", within, p.stdout.String(), p.stderr.String())
		return "", nil
	}
}

var (
	// A progress line with events handled: records are flowing.
	handledLine = regexp.MustCompile(`^\s*[0-9.]+s\s+produced\s+[0-9]+\s+handled\s+[1-9][0-9]*\s`)
	// One line per partition of what the group committed.
	committedLine = regexp.MustCompile(`(?m)^  orders/([0-9]+)  committed (-?[0-9]+)  \(this run produced offsets ([0-9]+)\.\.([0-9]+), ([0-9]+) finished\)$`)
	stoppedLine   = regexp.MustCompile(`(?m)^stopped after [0-9.]+s: ([0-9]+) of ([0-9]+) events produced, ([0-9]+) handled, ([0-9]+) committed; every committed offset covers finished events only$`)
)

// SIGINT (Ctrl-C) or SIGTERM while records flow stops the demo cleanly, on
// each backend: the engine drains and commits, the demo prints what the
// group committed per partition (read back from the cluster or the log),
// and exits with status 0, promptly. The positions are consistent: each
// partition that finished events has a commit within what this run
// produced, the sum is the summary's count, fewer than all the events
// (the run was stopped mid-way), and the demo found no commit past an
// event that was not finished.
func TestDemoStopsCleanlyOnASignal(t *testing.T) {
	const partitions, records = 4, 100000
	for _, tc := range []struct {
		name string
		args []string
		sig  os.Signal
	}{
		{"kafka-sarama/SIGINT", []string{"-client", "sarama"}, os.Interrupt},
		{"kafka-franz/SIGTERM", []string{"-client", "franz"}, syscall.SIGTERM},
		{"memory/SIGINT", []string{"-source", "memory"}, os.Interrupt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := startProgram(t, handledLine, append(tc.args, "-records", strconv.Itoa(records), "-partitions", strconv.Itoa(partitions),
				"-keys", "200", "-latency", "1ms", "-concurrency", "16", "-producers", "4")...)
			p.waitFlowing(t, time.Minute)
			require.NoError(t, p.cmd.Process.Signal(tc.sig))
			out, err := p.waitExit(t, time.Minute)
			require.NoError(t, err, "exit status 0\n%s\n%s", out, p.stderr.String())

			require.Contains(t, out, "interrupted: draining the events in flight and committing")
			require.Regexp(t, `(?m)^drained and committed in [0-9.]+s$`, out)
			lines := committedLine.FindAllStringSubmatch(out, -1)
			require.Len(t, lines, partitions, "a line per partition:\n%s", out)
			var sum int64
			for i, m := range lines {
				n := make([]int64, 5)
				for j := range n {
					n[j], err = strconv.ParseInt(m[j+1], 10, 64)
					require.NoError(t, err)
				}
				part, committed, first, last, finished := n[0], n[1], n[2], n[3], n[4]
				require.Equal(t, int64(i), part)
				if finished > 0 {
					require.GreaterOrEqual(t, committed, first, "partition %d finished events and has a commit:\n%s", part, out)
				}
				require.LessOrEqual(t, committed, last+1, "partition %d: nothing committed past what was produced", part)
				if committed >= first {
					sum += committed - first
				}
			}
			m := stoppedLine.FindStringSubmatch(out)
			require.NotNil(t, m, "the summary line:\n%s", out)
			committed, _ := strconv.ParseInt(m[4], 10, 64)
			handled, _ := strconv.ParseInt(m[3], 10, 64)
			require.Equal(t, sum, committed, "the summary counts what the partitions' commits cover")
			require.Positive(t, committed)
			require.Less(t, committed, int64(records), "stopped mid-run")
			require.LessOrEqual(t, committed, handled)
		})
	}
}

// A second signal while the first one's drain waits for handlers ends the
// demo at once (here the handlers take up to 20 s and the drain would wait
// for them).
func TestDemoSecondSignalExitsAtOnce(t *testing.T) {
	t.Parallel()
	p := startProgram(t, regexp.MustCompile(`^joined the group`), "-source", "memory", "-records", "1000", "-partitions", "2",
		"-keys", "100", "-latency", "10s", "-concurrency", "8", "-producers", "2", "-quiet")
	p.waitFlowing(t, time.Minute)
	require.NoError(t, p.cmd.Process.Signal(os.Interrupt))
	require.Eventually(t, func() bool { return strings.Contains(p.stdout.String(), "interrupted: draining") }, time.Minute, 5*time.Millisecond)
	start := time.Now()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	_, err := p.waitExit(t, time.Minute)
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	require.Equal(t, -1, exit.ExitCode(), "ended by the signal: %v", err)
	require.Less(t, time.Since(start), 10*time.Second, "at once, not after the drain")
}
