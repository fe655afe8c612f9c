package main

import (
	"fmt"
	"strings"

	"golang.org/x/mod/modfile"
)

// release is what a release makes of one public module's go.mod: every
// requirement of a sibling at the release's version, no replace lines
// (a dependency's replace lines are ignored by the modules that require
// it, so a release must not need one).
type release struct {
	version string
	// public holds the module paths of the public modules.
	public map[string]bool
	// family is the path every module of the repository starts with.
	family string
}

// goMod returns the released form of the go.mod in data (read from file),
// and the problems that would make the release unusable: a requirement of
// an unpublished (test-only or tool) module of the repository, and a
// replace line that is not one of the repository's own modules pointing
// at its directory.
func (r release) goMod(file string, data []byte) ([]byte, []string, error) {
	f, err := modfile.Parse(file, data, nil)
	if err != nil {
		return nil, nil, err
	}
	if f.Module == nil {
		return nil, nil, fmt.Errorf("%s: no module line", file)
	}
	self := f.Module.Mod.Path
	var problems []string
	for _, req := range f.Require {
		p := req.Mod.Path
		if !r.inFamily(p) {
			continue
		}
		if !r.public[p] {
			problems = append(problems, fmt.Sprintf("%s requires %s, which is not published (a test-only module or a tool): "+
				"move what needs it into a test-only module", self, p))
			continue
		}
		if err := f.AddRequire(p, r.version); err != nil {
			return nil, nil, err
		}
	}
	for _, rep := range f.Replace {
		local := rep.New.Version == "" && modfile.IsDirectoryPath(rep.New.Path)
		if !(r.inFamily(rep.Old.Path) && local) {
			problems = append(problems, fmt.Sprintf("%s needs the replace %s => %s, which a release cannot carry "+
				"(the modules that require %s ignore it)", self, modString(rep.Old.Path, rep.Old.Version),
				modString(rep.New.Path, rep.New.Version), self))
		}
	}
	for _, rep := range append([]*modfile.Replace(nil), f.Replace...) {
		if err := f.DropReplace(rep.Old.Path, rep.Old.Version); err != nil {
			return nil, nil, err
		}
	}
	f.Cleanup()
	out, err := f.Format()
	if err != nil {
		return nil, nil, err
	}
	return out, problems, nil
}

// inFamily reports whether path is the repository's root module or one
// below it.
func (r release) inFamily(path string) bool {
	return path == r.family || strings.HasPrefix(path, r.family+"/")
}

func modString(path, version string) string {
	if version == "" {
		return path
	}
	return path + " " + version
}
