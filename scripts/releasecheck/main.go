// Command releasecheck is what scripts/release-check runs: it checks that
// a service outside this repository can require every public module of
// the tree as a release at VERSION would publish it, with no replace line.
//
//	scripts/release-check v1.2.0
//
// It makes every public module's go.mod what the release would tag
// (requirements of the repository's own modules at VERSION, replace lines
// dropped), refuses a public module that requires an unpublished one (a
// test-only module or a tool), that requires another public module only for
// its tests, or that needs a replace line; publishes the modules at
// VERSION in a module proxy in a temporary directory (GOPROXY=file://...,
// the layout the GOPROXY protocol serves); then, outside the workspace
// (GOWORK=off) and with a module cache of its own (so that no earlier run's
// copy of VERSION is used), makes a fresh module that requires all of them,
// builds a small program against them, vets it and runs it, and one fresh
// module per public module that requires that one alone and may see no
// other module of the repository than those its code imports (no sarama for
// a franz-go user). Modules of other projects come from the local module
// cache, else from the configured proxy, checked against the checksum
// database as usual; the repository's own are exempt from it (GONOSUMDB),
// since they are not published yet.
//
// It exits with status 1 and says why when any of that fails.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/semver"
)

// publicModules are the modules a release tags and a service may require,
// by directory relative to the repository root. Every other module of
// go.work must be in unpublishedModules: test-only modules and programs
// that live in the repository, which a release does not tag and no public
// module may require.
var (
	publicModules = []string{
		".",
		"adapters/orderlysarama",
		"adapters/orderlykgo",
		"tracing",
		"tracing/otlpsetup",
		"bridges/protoactorbridge",
	}
	unpublishedModules = []string{
		"adapters/internal",
		"bench",
		"bench/peers",
		"bench/protoactor",
		"examples/orders",
		"examples/reports",
		"scripts/releasecheck",
	}
)

// otherClients names, per public module, modules that must stay out of the
// module graph of a service that requires that module alone.
var otherClients = map[string][]string{
	"adapters/orderlykgo": {"github.com/IBM/sarama"},
}

func main() {
	root := flag.String("root", "", "the repository's root directory (default: the git top level of the current directory)")
	keep := flag.Bool("keep", false, "keep the temporary directory (the proxy and the modules made) and say where it is")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: scripts/release-check [-keep] VERSION\n\n"+
			"Checks that a service can require every public module at VERSION (e.g. v1.2.0) with no replace line.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*root, flag.Arg(0), *keep); err != nil {
		fmt.Fprintf(os.Stderr, "release-check: FAILED: %v\n", err)
		os.Exit(1)
	}
}

// mod is one module of the workspace.
type mod struct {
	dir   string // absolute
	rel   string // relative to the repository root, slash-separated
	path  string // module path
	goMod []byte
}

func run(root, version string, keep bool) error {
	if !semver.IsValid(version) || semver.Canonical(version) != version {
		return fmt.Errorf("%q is not a full semantic version such as v1.2.0 or v1.2.0-rc.1", version)
	}
	if m := semver.Major(version); m != "v0" && m != "v1" {
		return fmt.Errorf("%s: from v2 on, every module path needs a /%s suffix, which these modules do not have", version, m)
	}
	if root == "" {
		out, err := command("", nil, "git", "rev-parse", "--show-toplevel")
		if err != nil {
			return err
		}
		root = strings.TrimSpace(out)
	}
	root, err := filepath.Abs(root)
	if err != nil {
		return err
	}
	mods, err := workspaceModules(root)
	if err != nil {
		return err
	}
	var public []mod
	for _, rel := range publicModules {
		m, ok := mods[rel]
		if !ok {
			return fmt.Errorf("the public module in %s is not in go.work", rel)
		}
		public = append(public, m)
	}
	for rel := range mods {
		if !slices.Contains(publicModules, rel) && !slices.Contains(unpublishedModules, rel) {
			return fmt.Errorf("the module in %s (go.work) is neither public nor unpublished: add it to one of the lists in scripts/releasecheck/main.go", rel)
		}
	}
	rel := release{version: version, family: mods["."].path, public: map[string]bool{}}
	for _, m := range public {
		rel.public[m.path] = true
	}
	fmt.Printf("release-check %s: %d public modules\n", version, len(public))

	// What the release would tag, and what would make it unusable.
	released := map[string][]byte{}
	packages := map[string][]string{} // module path → its importable packages
	uses := map[string][]string{}     // module path → the repository's modules its code (not its tests) imports
	var problems []string
	for _, m := range public {
		goMod, p, err := rel.goMod(filepath.Join(m.dir, "go.mod"), m.goMod)
		if err != nil {
			return err
		}
		problems = append(problems, p...)
		released[m.path] = goMod
		pkgs, deps, err := listPackages(m.dir)
		if err != nil {
			return err
		}
		packages[m.path] = pkgs
		for _, d := range deps {
			if rel.public[d] && d != m.path {
				uses[m.path] = append(uses[m.path], d)
			}
		}
		f, err := modfile.ParseLax("go.mod", m.goMod, nil)
		if err != nil {
			return err
		}
		for _, req := range f.Require {
			if rel.public[req.Mod.Path] && !slices.Contains(uses[m.path], req.Mod.Path) {
				problems = append(problems, fmt.Sprintf("%s requires %s only for its tests: move those tests into a test-only module",
					m.path, req.Mod.Path))
			}
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("a service could not require these modules as they are:\n  %s", strings.Join(problems, "\n  "))
	}

	tmp, err := os.MkdirTemp("", "orderly-release-check-")
	if err != nil {
		return err
	}
	if keep {
		fmt.Printf("  keeping %s\n", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	repoFiles, err := gitFiles(root)
	if err != nil {
		return err
	}
	px := proxy{dir: filepath.Join(tmp, "proxy")}
	for _, m := range public {
		files, err := moduleFiles(repoFiles, root, m.dir)
		if err != nil {
			return err
		}
		if err := px.add(m.path, version, m.dir, files, released[m.path]); err != nil {
			return err
		}
	}
	fmt.Printf("  published %d modules at %s in a file proxy\n", len(public), version)

	// A module cache of their own, new on every run: the go command takes
	// what a module cache holds for a version as final (it neither fetches
	// it again nor reads it again: its package index is keyed by the
	// directory), so a cache that saw an earlier tree at this version
	// would check that tree instead of this one. It is writable
	// (-modcacherw) so that it can be removed.
	env, err := consumerEnv(filepath.Join(tmp, "modcache"), px.dir, rel.family)
	if err != nil {
		return err
	}
	sums, err := goSums(public)
	if err != nil {
		return err
	}
	c := consumer{dir: filepath.Join(tmp, "all"), env: env, goVersion: goVersion(mods["."].goMod), sums: sums, version: version}
	var all []string
	for _, m := range public {
		all = append(all, m.path)
	}
	if err := c.write(all, packages, smallProgram); err != nil {
		return err
	}
	t0 := time.Now()
	graph, err := c.check(true)
	if err != nil {
		return fmt.Errorf("a service requiring every public module: %w", err)
	}
	if err := rel.checkGraph(graph, all); err != nil {
		return fmt.Errorf("a service requiring every public module: %w", err)
	}
	fmt.Printf("  a service requiring every public module: tidy, build, vet and run: ok (%d modules in its graph; %.0fs)\n",
		len(graph), time.Since(t0).Seconds())

	for _, m := range public {
		c := c
		c.dir = filepath.Join(tmp, "only-"+strings.ReplaceAll(m.rel, "/", "-"))
		if err := c.write([]string{m.path}, packages, ""); err != nil {
			return err
		}
		graph, err := c.check(false)
		if err != nil {
			return fmt.Errorf("a service requiring %s alone: %w", m.path, err)
		}
		if err := rel.checkGraph(graph, append([]string{m.path}, uses[m.path]...)); err != nil {
			return fmt.Errorf("a service requiring %s alone: %w", m.path, err)
		}
		for _, other := range otherClients[m.rel] {
			if slices.ContainsFunc(graph, func(g string) bool { return strings.HasPrefix(g, other+" ") || g == other }) {
				return fmt.Errorf("a service requiring %s alone has %s in its module graph (go list -m all)", m.path, other)
			}
		}
		note := ""
		if o := otherClients[m.rel]; len(o) > 0 {
			note = ", without " + strings.Join(o, ", ")
		}
		fmt.Printf("  a service requiring %s alone: %d modules in its graph%s\n", m.path, len(graph), note)
	}
	var tags []string
	for _, m := range public {
		tags = append(tags, strings.TrimPrefix(m.rel+"/", "./")+version)
	}
	fmt.Printf("release-check %s: ok; the release's tags: %s\n", version, strings.Join(tags, " "))
	return nil
}

// checkGraph checks a service's module graph (go list -m all lines): the
// repository's modules in it are only the allowed ones, each at the
// release's version, with no replacement.
func (r release) checkGraph(graph, allowed []string) error {
	for _, line := range graph[1:] { // the first line is the service itself
		fields := strings.Fields(line)
		if len(fields) == 0 || !r.inFamily(fields[0]) {
			continue
		}
		switch {
		case !slices.Contains(allowed, fields[0]):
			return fmt.Errorf("%s is in its module graph (go list -m all): no public module may need it", line)
		case len(fields) != 2 || fields[1] != r.version:
			return fmt.Errorf("%q in its module graph: want %s at %s, with no replacement", line, fields[0], r.version)
		}
	}
	return nil
}

// workspaceModules reads go.work and each module's go.mod, by directory
// relative to root.
func workspaceModules(root string) (map[string]mod, error) {
	data, err := os.ReadFile(filepath.Join(root, "go.work"))
	if err != nil {
		return nil, err
	}
	w, err := modfile.ParseWork("go.work", data, nil)
	if err != nil {
		return nil, err
	}
	mods := map[string]mod{}
	for _, u := range w.Use {
		dir := filepath.Join(root, filepath.FromSlash(u.Path))
		rel, err := filepath.Rel(root, dir)
		if err != nil {
			return nil, err
		}
		goMod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err != nil {
			return nil, err
		}
		path := modfile.ModulePath(goMod)
		if path == "" {
			return nil, fmt.Errorf("%s/go.mod: no module line", rel)
		}
		mods[filepath.ToSlash(rel)] = mod{dir: dir, rel: filepath.ToSlash(rel), path: path, goMod: goMod}
	}
	return mods, nil
}

// listPackages returns the importable packages of the module in dir (no
// internal ones, no commands), and the modules its packages import, tests
// left out.
func listPackages(dir string) (pkgs, deps []string, err error) {
	out, err := command(dir, nil, "go", "list", "-f", "{{.ImportPath}} {{.Name}}", "./...")
	if err != nil {
		return nil, nil, err
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		path, name, _ := strings.Cut(line, " ")
		if name == "main" || strings.Contains(path+"/", "/internal/") {
			continue
		}
		pkgs = append(pkgs, path)
	}
	out, err = command(dir, nil, "go", "list", "-deps", "-f", "{{with .Module}}{{.Path}}{{end}}", "./...")
	if err != nil {
		return nil, nil, err
	}
	for _, p := range strings.Fields(out) {
		if !slices.Contains(deps, p) {
			deps = append(deps, p)
		}
	}
	return pkgs, deps, nil
}

// gitFiles lists the repository's files (tracked, and new ones git does
// not ignore), relative to root.
func gitFiles(root string) ([]string, error) {
	out, err := command(root, nil, "git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	if err != nil {
		return nil, err
	}
	var files []string
	for _, f := range strings.Split(out, "\x00") {
		if f != "" && !slices.Contains(files, f) {
			files = append(files, f)
		}
	}
	return files, nil
}

// goSums returns the lines of the public modules' go.sum files: a fresh
// module starts with them, so that the modules they vouch for need no
// lookup in the checksum database.
func goSums(public []mod) ([]byte, error) {
	seen := map[string]bool{}
	var b bytes.Buffer
	for _, m := range public {
		data, err := os.ReadFile(filepath.Join(m.dir, "go.sum"))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			if line := sc.Text(); line != "" && !seen[line] {
				seen[line] = true
				b.WriteString(line + "\n")
			}
		}
	}
	return b.Bytes(), nil
}

func goVersion(goMod []byte) string {
	f, err := modfile.ParseLax("go.mod", goMod, nil)
	if err != nil || f.Go == nil {
		return "1.26.0"
	}
	return f.Go.Version
}

// command runs name with args in dir (env added to the environment) and
// returns its standard output; its error says what failed and carries the
// standard error.
func command(dir string, env []string, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if env != nil {
		cmd.Env = env
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		where := ""
		if dir != "" {
			where = " (in " + dir + ")"
		}
		return stdout.String(), fmt.Errorf("%s %s%s: %v\n%s", name, strings.Join(args, " "), where, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}
