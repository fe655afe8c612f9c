package main

import (
	"archive/zip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	modzip "golang.org/x/mod/zip"
)

var testRelease = release{
	version: "v1.4.0",
	family:  "github.com/orderly-go/orderly",
	public: map[string]bool{
		"github.com/orderly-go/orderly":                        true,
		"github.com/orderly-go/orderly/tracing":                true,
		"github.com/orderly-go/orderly/adapters/orderlykgo":    true,
		"github.com/orderly-go/orderly/adapters/orderlysarama": true,
	},
}

// A public module's requirements of its siblings become the release's
// version, its replace lines of siblings go, and nothing else changes.
func TestGoModRequiresSiblingsAtTheRelease(t *testing.T) {
	in := `module github.com/orderly-go/orderly/tracing/otlpsetup

go 1.26.0

replace github.com/orderly-go/orderly => ../..

replace github.com/orderly-go/orderly/tracing => ..

require (
	github.com/orderly-go/orderly v0.0.0-00010101000000-000000000000
	github.com/orderly-go/orderly/tracing v0.0.0-00010101000000-000000000000
	go.opentelemetry.io/otel v1.47.0
)
`
	out, problems, err := testRelease.goMod("go.mod", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) > 0 {
		t.Fatalf("problems: %v", problems)
	}
	f, err := modfile.Parse("go.mod", out, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Replace) != 0 {
		t.Errorf("replace lines left:\n%s", out)
	}
	want := map[string]string{
		"github.com/orderly-go/orderly":         "v1.4.0",
		"github.com/orderly-go/orderly/tracing": "v1.4.0",
		"go.opentelemetry.io/otel":              "v1.47.0",
	}
	if len(f.Require) != len(want) {
		t.Errorf("requirements:\n%s", out)
	}
	for _, r := range f.Require {
		if want[r.Mod.Path] != r.Mod.Version {
			t.Errorf("%s at %s, want %q", r.Mod.Path, r.Mod.Version, want[r.Mod.Path])
		}
	}
}

// What would make a release unusable is named: a requirement of an
// unpublished module of the repository, a replace line a release cannot
// carry.
func TestGoModNamesWhatBreaksARelease(t *testing.T) {
	for name, tc := range map[string]struct {
		goMod, want string
	}{
		"test-only module": {
			goMod: `module github.com/orderly-go/orderly/adapters/orderlykgo
require github.com/orderly-go/orderly/adapters/internal v0.0.0-00010101000000-000000000000
replace github.com/orderly-go/orderly/adapters/internal => ../internal
`,
			want: "github.com/orderly-go/orderly/adapters/orderlykgo requires github.com/orderly-go/orderly/adapters/internal, which is not published",
		},
		"a fork": {
			goMod: `module github.com/orderly-go/orderly/adapters/orderlysarama
require github.com/IBM/sarama v1.61.1
replace github.com/IBM/sarama => github.com/someone/sarama v1.61.2
`,
			want: "needs the replace github.com/IBM/sarama => github.com/someone/sarama v1.61.2",
		},
		"a local copy of another project": {
			goMod: `module github.com/orderly-go/orderly/adapters/orderlysarama
require github.com/IBM/sarama v1.61.1
replace github.com/IBM/sarama => ../../sarama
`,
			want: "needs the replace github.com/IBM/sarama => ../../sarama",
		},
	} {
		t.Run(name, func(t *testing.T) {
			out, problems, err := testRelease.goMod("go.mod", []byte(tc.goMod))
			if err != nil {
				t.Fatal(err)
			}
			if len(problems) != 1 || !strings.Contains(problems[0], tc.want) {
				t.Fatalf("problems %q, want one with %q", problems, tc.want)
			}
			if strings.Contains(string(out), "replace") {
				t.Errorf("the released go.mod keeps a replace line:\n%s", out)
			}
		})
	}
}

// A service's module graph may hold only the allowed modules of the
// repository, each at the release's version.
func TestCheckGraph(t *testing.T) {
	allowed := []string{"github.com/orderly-go/orderly", "github.com/orderly-go/orderly/adapters/orderlykgo"}
	for _, tc := range []struct {
		line string
		ok   bool
	}{
		{"github.com/orderly-go/orderly v1.4.0", true},
		{"github.com/twmb/franz-go v1.22.3", true},
		{"github.com/orderly-go/orderly/adapters/orderlysarama v1.4.0", false},
		{"github.com/orderly-go/orderly/adapters/internal v1.4.0", false},
		{"github.com/orderly-go/orderly v0.0.0-00010101000000-000000000000", false},
		{"github.com/orderly-go/orderly v1.4.0 => ../orderly", false},
	} {
		err := testRelease.checkGraph([]string{"example.com/service", tc.line}, allowed)
		if (err == nil) != tc.ok {
			t.Errorf("%q: error %v, want ok=%v", tc.line, err, tc.ok)
		}
	}
}

// A module's zip holds its files (not a nested module's, not deleted
// ones) under module@version/, with the released go.mod, and is a zip the
// go command accepts.
func TestProxyZip(t *testing.T) {
	root := t.TempDir()
	write := func(name, data string) {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a/go.mod", "module example.com/r/a\n\nreplace example.com/r => ..\n")
	write("a/a.go", "package a\n")
	write("a/sub/sub.go", "package sub\n")
	write("a/nested/go.mod", "module example.com/r/a/nested\n")
	write("a/nested/n.go", "package nested\n")
	repoFiles := []string{"go.mod", "a/go.mod", "a/a.go", "a/sub/sub.go", "a/nested/go.mod", "a/nested/n.go", "a/gone.go"}
	files, err := moduleFiles(repoFiles, root, filepath.Join(root, "a"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(files, " "); got != "go.mod a.go sub/sub.go" {
		t.Fatalf("files %q", got)
	}
	released := []byte("module example.com/r/a\n")
	px := proxy{dir: filepath.Join(root, "proxy")}
	if err := px.add("example.com/r/a", "v1.4.0", filepath.Join(root, "a"), files, released); err != nil {
		t.Fatal(err)
	}
	at := filepath.Join(px.dir, "example.com", "r", "a", "@v")
	zipFile := filepath.Join(at, "v1.4.0.zip")
	if _, err := modzip.CheckZip(module.Version{Path: "example.com/r/a", Version: "v1.4.0"}, zipFile); err != nil {
		t.Fatal(err)
	}
	z, err := zip.OpenReader(zipFile)
	if err != nil {
		t.Fatal(err)
	}
	defer z.Close()
	var names []string
	for _, f := range z.File {
		names = append(names, f.Name)
		if f.Name == "example.com/r/a@v1.4.0/go.mod" {
			r, err := f.Open()
			if err != nil {
				t.Fatal(err)
			}
			data, err := io.ReadAll(r)
			r.Close()
			if err != nil {
				t.Fatal(err)
			}
			if string(data) != string(released) {
				t.Errorf("go.mod in the zip:\n%s", data)
			}
		}
	}
	if got := strings.Join(names, " "); got != "example.com/r/a@v1.4.0/go.mod example.com/r/a@v1.4.0/a.go example.com/r/a@v1.4.0/sub/sub.go" {
		t.Errorf("zip entries %q", got)
	}
	for _, name := range []string{"list", "v1.4.0.info", "v1.4.0.mod"} {
		if _, err := os.Stat(filepath.Join(at, name)); err != nil {
			t.Error(err)
		}
	}
	mod, err := os.ReadFile(filepath.Join(at, "v1.4.0.mod"))
	if err != nil || string(mod) != string(released) {
		t.Errorf(".mod %q, %v", mod, err)
	}
}
