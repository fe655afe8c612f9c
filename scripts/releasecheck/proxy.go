package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/mod/module"
	modzip "golang.org/x/mod/zip"
)

// proxy is a module proxy in a directory, laid out as the GOPROXY protocol
// serves one (GOPROXY=file://dir): for each module,
// <escaped path>/@v/list, and <version>.info, .mod and .zip.
type proxy struct {
	dir string
}

// add publishes the module at version: its go.mod is goMod, its files
// are files (paths relative to the module's directory, read from dir).
func (p proxy) add(modPath, version, dir string, files []string, goMod []byte) error {
	esc, err := module.EscapePath(modPath)
	if err != nil {
		return err
	}
	escVer, err := module.EscapeVersion(version)
	if err != nil {
		return err
	}
	at := filepath.Join(p.dir, filepath.FromSlash(esc), "@v")
	if err := os.MkdirAll(at, 0o755); err != nil {
		return err
	}
	info, err := json.Marshal(struct {
		Version string
		Time    time.Time
	}{version, time.Now().UTC().Truncate(time.Second)})
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(at, escVer+".info"), info, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(at, escVer+".mod"), goMod, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(at, "list"), []byte(version+"\n"), 0o644); err != nil {
		return err
	}
	zf, err := os.Create(filepath.Join(at, escVer+".zip"))
	if err != nil {
		return err
	}
	zfiles := make([]modzip.File, 0, len(files))
	for _, f := range files {
		if f == "go.mod" {
			zfiles = append(zfiles, memFile{name: f, data: goMod})
			continue
		}
		zfiles = append(zfiles, diskFile{name: f, path: filepath.Join(dir, filepath.FromSlash(f))})
	}
	err = modzip.Create(zf, module.Version{Path: modPath, Version: version}, zfiles)
	if cerr := zf.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("zip of %s: %w", modPath, err)
	}
	return nil
}

// moduleFiles returns the files of the module in dir, relative to it,
// from the repository's file list (tracked files, and new ones git does
// not ignore; paths relative to the repository root): nested modules'
// files are not the module's, and neither are files that no longer exist.
func moduleFiles(repoFiles []string, root, dir string) ([]string, error) {
	rel, err := filepath.Rel(root, dir)
	if err != nil {
		return nil, err
	}
	prefix := ""
	if rel != "." {
		prefix = filepath.ToSlash(rel) + "/"
	}
	var mine []string
	nested := map[string]bool{} // directories (relative to dir) with a go.mod of their own
	for _, f := range repoFiles {
		if !strings.HasPrefix(f, prefix) {
			continue
		}
		f = strings.TrimPrefix(f, prefix)
		if path.Base(f) == "go.mod" && f != "go.mod" {
			nested[path.Dir(f)] = true
		}
		mine = append(mine, f)
	}
	var out []string
	for _, f := range mine {
		if inNested(f, nested) {
			continue
		}
		if _, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(f))); err != nil {
			if os.IsNotExist(err) {
				continue // deleted in the working tree
			}
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

func inNested(f string, nested map[string]bool) bool {
	for d := path.Dir(f); d != "."; d = path.Dir(d) {
		if nested[d] {
			return true
		}
	}
	return false
}

// diskFile is a module file read from disk.
type diskFile struct{ name, path string }

func (f diskFile) Path() string                 { return f.name }
func (f diskFile) Lstat() (os.FileInfo, error)  { return os.Lstat(f.path) }
func (f diskFile) Open() (io.ReadCloser, error) { return os.Open(f.path) }

// memFile is a module file made here (the released go.mod).
type memFile struct {
	name string
	data []byte
}

func (f memFile) Path() string                 { return f.name }
func (f memFile) Lstat() (os.FileInfo, error)  { return memInfo(f), nil }
func (f memFile) Open() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(f.data)), nil }

type memInfo memFile

func (i memInfo) Name() string       { return path.Base(i.name) }
func (i memInfo) Size() int64        { return int64(len(i.data)) }
func (i memInfo) Mode() fs.FileMode  { return 0o644 }
func (i memInfo) ModTime() time.Time { return time.Time{} }
func (i memInfo) IsDir() bool        { return false }
func (i memInfo) Sys() any           { return nil }
