package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runAsService, set in the environment, makes the test binary the
// service itself (TestMain runs main): a test starts it as a process of
// its own and sends it signals as a terminal or an orchestrator would.
const runAsService = "REPORTS_TEST_RUN_AS_SERVICE"

func TestMain(m *testing.M) {
	if os.Getenv(runAsService) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// output is a process's output, written by one goroutine and read by
// others.
type output struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// program is the service running as a process of its own.
type program struct {
	cmd            *exec.Cmd
	stdout, stderr output
	ready          chan string   // receives the page's URL, from the line that says where it is
	exited         chan struct{} // closed once the process has exited (err)
	err            error
}

var openLine = regexp.MustCompile(`^open (http://\S+/) \(Ctrl-C stops\)$`)

// startProgram runs the service with args; the process is killed when the
// test ends, if it has not exited by then.
func startProgram(t *testing.T, args ...string) *program {
	t.Helper()
	p := &program{cmd: exec.Command(os.Args[0], args...), ready: make(chan string, 1), exited: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), runAsService+"=1")
	p.cmd.Stderr = &p.stderr
	stdout, err := p.cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, p.cmd.Start())
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.stdout.Write([]byte(sc.Text() + "\n"))
			if m := openLine.FindStringSubmatch(sc.Text()); m != nil {
				p.ready <- m[1]
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

// url waits for the line that says where the page is, and returns it.
func (p *program) url(t *testing.T) string {
	t.Helper()
	select {
	case u := <-p.ready:
		return u
	case <-p.exited:
		t.Fatalf("the service exited (%v) before it served:\n%s\n%s", p.err, p.stdout.String(), p.stderr.String())
	case <-time.After(waitLong):
		t.Fatalf("the service did not serve within %v:\n%s\n%s", waitLong, p.stdout.String(), p.stderr.String())
	}
	return ""
}

// waitExit waits for the process to exit and returns its error (nil:
// exit status 0) and its standard output.
func (p *program) waitExit(t *testing.T, within time.Duration) (string, error) {
	t.Helper()
	select {
	case <-p.exited:
		return p.stdout.String(), p.err
	case <-time.After(within):
		t.Fatalf("the service did not exit within %v of the signal:\n%s\n%s", within, p.stdout.String(), p.stderr.String())
		return "", nil
	}
}

var (
	// One line per step: its topic, its group, and partition=offset.
	stepLine    = regexp.MustCompile(`(?m)^  (reports\.\S+)\s+group (reports-\S+)\s+((?: [0-9]+=-?[0-9]+)+)$`)
	stoppedLine = regexp.MustCompile(`(?m)^stopped: ([0-9]+) reports in the store: ([0-9]+) sent, ([0-9]+) failed, ([0-9]+) unfinished`)
)

// SIGINT or SIGTERM while reports flow stops the service cleanly: the API
// closes, every step drains and commits, the service prints each step's
// committed offsets per partition (read back from the cluster) and the
// reports by state, and exits with status 0, promptly. The commits are
// consistent with the store the process leaves behind: every request the
// triage step committed is a report the store holds, triaged; and the
// counts printed are the store's.
func TestServiceStopsCleanlyOnASignal(t *testing.T) {
	for _, sig := range []os.Signal{os.Interrupt, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			const partitions = 2
			db := filepath.Join(t.TempDir(), "reports.db")
			p := startProgram(t, "-addr", "127.0.0.1:0", "-partitions", strconv.Itoa(partitions), "-db", db, "-webhook-secret", "s",
				"-latency", "20ms", "-send-latency", "2ms", "-flaky", "0", "-poison", "0", "-load", "paid=1200,free=1200,cron=1200")
			url := p.url(t)
			require.Eventually(t, func() bool {
				sent := 0
				for _, ps := range getStats(t, url).Plans {
					sent += ps.Sent
				}
				return sent >= 3
			}, waitLong, 10*time.Millisecond, "reports flow")
			require.NoError(t, p.cmd.Process.Signal(sig))
			out, err := p.waitExit(t, time.Minute)
			require.NoError(t, err, "exit status 0\n%s\n%s", out, p.stderr.String())

			require.Contains(t, out, "stopping: the API closes, then every step drains what is in flight and commits")
			require.Regexp(t, `(?m)^every step drained and committed in [0-9.]+s$`, out)
			steps := stepLine.FindAllStringSubmatch(out, -1)
			require.Len(t, steps, 8, "a line per step:\n%s", out)
			committed := map[string][]int64{} // by topic
			for _, m := range steps {
				fields := strings.Fields(m[3])
				require.Len(t, fields, partitions, m[0])
				for i, f := range fields {
					part, off, _ := strings.Cut(f, "=")
					require.Equal(t, strconv.Itoa(i), part, m[0])
					n, err := strconv.ParseInt(off, 10, 64)
					require.NoError(t, err)
					require.GreaterOrEqual(t, n, int64(-1), m[0])
					committed[m[1]] = append(committed[m[1]], n)
				}
			}
			var triaged int64
			for _, o := range committed[topicRequests] {
				triaged += max(o, 0)
			}
			require.Positive(t, triaged, "triage committed the requests it routed:\n%s", out)

			m := stoppedLine.FindStringSubmatch(out)
			require.NotNil(t, m, "the summary line:\n%s", out)
			st, err := openStore(db)
			require.NoError(t, err)
			defer st.close()
			counts, err := st.countByState(context.Background())
			require.NoError(t, err)
			total, sent, failed, queuedOrBeyond := 0, 0, 0, 0
			for _, byState := range counts {
				for s, n := range byState {
					total += n
					switch s {
					case stateSent:
						sent += n
					case stateFailed:
						failed += n
					}
					if s.rank() >= stateQueued.rank() {
						queuedOrBeyond += n
					}
				}
			}
			assert.Equal(t, []string{strconv.Itoa(total), strconv.Itoa(sent), strconv.Itoa(failed), strconv.Itoa(total - sent - failed)}, m[1:],
				"the counts printed are the store's")
			assert.Positive(t, sent)
			assert.LessOrEqual(t, triaged, int64(queuedOrBeyond),
				"every committed request is a report the store holds as triaged (at-least-once: commits follow the work)")
		})
	}
}

// -h numbers the priorities as orderly numbers its levels: from 0, the
// highest.
func TestHelpNumbersPrioritiesFromZero(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-h")
	cmd.Env = append(os.Environ(), runAsService+"=1")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	for _, want := range []string{
		"WIP limit of paid reports (priority 0, the highest)",
		"WIP limit of free reports (priority 1)",
		"WIP limit of cron reports (priority 2)",
	} {
		assert.Contains(t, string(out), want)
	}
	assert.NotContains(t, string(out), "priority 3")
}
