package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// consumer is a fresh module outside the workspace, as a service that
// depends on the released modules would have.
type consumer struct {
	dir       string
	env       []string
	goVersion string
	sums      []byte // the go.sum it starts with
	version   string
}

// write makes the module: it requires each of requires at the release's
// version and imports every package of theirs (packages: by module path);
// main is its main.go, or an empty program when "".
func (c consumer) write(requires []string, packages map[string][]string, main string) error {
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return err
	}
	var gomod strings.Builder
	fmt.Fprintf(&gomod, "module example.com/service\n\ngo %s\n\nrequire (\n", c.goVersion)
	var imports strings.Builder
	imports.WriteString("package main\n\n// Every package of the modules this service requires.\nimport (\n")
	for _, r := range requires {
		fmt.Fprintf(&gomod, "\t%s %s\n", r, c.version)
		for _, p := range packages[r] {
			fmt.Fprintf(&imports, "\t_ %q\n", p)
		}
	}
	gomod.WriteString(")\n")
	imports.WriteString(")\n")
	if main == "" {
		main = "package main\n\nfunc main() {}\n"
	}
	for name, data := range map[string]string{"go.mod": gomod.String(), "imports.go": imports.String(), "main.go": main, "go.sum": string(c.sums)} {
		if err := os.WriteFile(filepath.Join(c.dir, name), []byte(data), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// check tidies the module, and with run builds, vets and runs it; it
// returns its module graph (go list -m all).
func (c consumer) check(run bool) ([]string, error) {
	gocmd := func(args ...string) (string, error) { return command(c.dir, c.env, "go", args...) }
	if _, err := gocmd("mod", "tidy"); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(c.dir, "go.mod"))
	if err != nil {
		return nil, err
	}
	if strings.Contains(string(data), "replace") {
		return nil, fmt.Errorf("its go.mod has a replace line after go mod tidy:\n%s", data)
	}
	if run {
		if _, err := gocmd("build", "-o", "service", "."); err != nil {
			return nil, err
		}
		if _, err := gocmd("vet", "./..."); err != nil {
			return nil, err
		}
		out, err := command(c.dir, c.env, filepath.Join(c.dir, "service"))
		if err != nil {
			return nil, fmt.Errorf("running the program: %w", err)
		}
		if !strings.HasPrefix(out, "ok") {
			return nil, fmt.Errorf("the program printed %q, not ok", out)
		}
	}
	out, err := gocmd("list", "-m", "all")
	if err != nil {
		return nil, err
	}
	return strings.Split(strings.TrimSpace(out), "\n"), nil
}

// consumerEnv is the environment of the fresh modules' go commands: no
// workspace, the module cache modcache, the release's
// proxy first, then the local module cache's downloads, then the
// configured proxies ("direct" left out: the repository's modules must
// come from the release's proxy). family is exempt from the checksum
// database, which has never seen these versions.
func consumerEnv(modcache, proxyDir, family string) ([]string, error) {
	goenv := func(key string) (string, error) {
		out, err := command("", nil, "go", "env", key)
		return strings.TrimSpace(out), err
	}
	local, err := goenv("GOMODCACHE")
	if err != nil {
		return nil, err
	}
	configured, err := goenv("GOPROXY")
	if err != nil {
		return nil, err
	}
	flags, err := goenv("GOFLAGS")
	if err != nil {
		return nil, err
	}
	proxies := []string{"file://" + filepath.ToSlash(proxyDir), "file://" + filepath.ToSlash(filepath.Join(local, "cache", "download"))}
	for _, p := range strings.FieldsFunc(configured, func(r rune) bool { return r == ',' || r == '|' }) {
		if p != "direct" && p != "off" {
			proxies = append(proxies, p)
		}
	}
	set := map[string]string{
		"GOWORK":              "off",
		"GOFLAGS":             strings.TrimSpace(flags + " -mod=mod -modcacherw -trimpath"),
		"GOPROXY":             strings.Join(proxies, ","),
		"GONOSUMDB":           family,
		"GONOPROXY":           "",
		"GOPRIVATE":           "",
		"GOMODCACHE":          modcache,
		"GOTOOLCHAIN":         "local",
		"GIT_TERMINAL_PROMPT": "0",
	}
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		_, ours := set[k]
		return ours
	})
	for k, v := range set {
		env = append(env, k+"="+v)
	}
	return env, nil
}

// smallProgram is the service that requires every public module: an
// engine with tracing hooks over the in-memory log handles what was
// produced, and the Kafka adapters' configuration is made.
const smallProgram = `// Command service uses the released modules as a service outside the
// repository would.
package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/orderly-go/orderly"
	"github.com/orderly-go/orderly/adapters/memory"
	"github.com/orderly-go/orderly/adapters/orderlykgo"
	"github.com/orderly-go/orderly/adapters/orderlysarama"
	"github.com/orderly-go/orderly/tracing"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run() error {
	const records = 20
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	log := memory.NewLog()
	if err := log.CreateTopic("orders", 2); err != nil {
		return err
	}
	for i := range records {
		if _, _, err := log.Produce("orders", []byte("order-"+strconv.Itoa(i%5)), []byte("event")); err != nil {
			return err
		}
	}
	var handled atomic.Int64
	done := make(chan struct{})
	eng, err := orderly.New(log.Member("service", []string{"orders"}),
		orderly.HandlerFunc(func(ctx context.Context, r *orderly.Record) error {
			if handled.Add(1) == records {
				close(done)
			}
			return nil
		}),
		orderly.WithOrdering(orderly.ByKey()), orderly.WithHooks(tracing.New()))
	if err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	ran := make(chan error, 1)
	go func() { ran <- eng.Run(runCtx) }()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("handled %d of %d records", handled.Load(), records)
	}
	stop()
	if err := <-ran; err != nil {
		return err
	}
	_ = orderlysarama.DefaultConfig()
	_ = orderlykgo.NewSource
	fmt.Println("ok: handled", handled.Load(), "records")
	return nil
}
`
