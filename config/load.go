package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/doctree"
)

// Bounds on what Load reads from disk.
const (
	// MaxFileBytes bounds one configuration file: 10 000 routes take
	// some 3 MiB of YAML.
	MaxFileBytes = 64 << 20
	// MaxDocumentFileBytes bounds a spec's document_file, as the admin
	// API bounds a spec's body (admin.Options.SpecMaxBytes' default).
	MaxDocumentFileBytes = 16 << 20
)

// EnvPrefix starts the name of every environment variable a document may
// read: a file must not be able to read the rest of the environment
// (the admin token, a database's password) into a value the admin API
// serves back.
const EnvPrefix = "GATEHOUSE_VAR_"

// Source is a document as read from files or a body: its tree and where
// each value came from.
type Source struct {
	// Root is the merged tree: map[string]any, []any, string,
	// json.Number, bool and nil.
	Root any
	// files are the files merged, in order; none for a body (Read).
	files []*sourceFile
	// added holds the places of values loading put in the tree (a spec's
	// document, read from its document_file), by pointer.
	added map[string]Pos
	// documents are the files read as specs' documents.
	documents []string
}

// sourceFile is one file of a Source, and where its entries went.
type sourceFile struct {
	name string
	pos  map[string]doctree.Pos // by pointer within the file
	// start is the index in each merged list of the file's first entry,
	// count how many it has there.
	start, count map[string]int
}

// Position returns the place of the value at pointer in the merged
// tree, or nil if it has none: a body's values, and values inside a YAML
// alias's expansion, have none.
func (s *Source) Position(pointer string) *Pos {
	if p, ok := s.added[pointer]; ok {
		return &p
	}
	if len(s.files) == 0 {
		return nil
	}
	if pointer == "" {
		// The merged document as a whole is in no one file.
		if len(s.files) > 1 {
			return nil
		}
		return s.files[0].at("")
	}
	member, rest, nested := strings.Cut(pointer[1:], "/")
	if !nested {
		for _, f := range s.files {
			if p := f.at(pointer); p != nil {
				return p
			}
		}
		return nil
	}
	index, tail, deeper := strings.Cut(rest, "/")
	i, err := strconv.Atoi(index)
	if err != nil {
		return nil
	}
	for _, f := range s.files {
		if start, n := f.start[member], f.count[member]; i >= start && i < start+n {
			local := "/" + member + "/" + strconv.Itoa(i-start)
			if deeper {
				local += "/" + tail
			}
			return f.at(local)
		}
	}
	return nil
}

func (f *sourceFile) at(pointer string) *Pos {
	p, ok := f.pos[pointer]
	if !ok {
		return nil
	}
	return &Pos{File: f.name, Line: p.Line, Column: p.Column}
}

// Locate fills p.Pos, unless it is set, with the place of the value at
// p.Pointer or, if that has none, of its nearest ancestor with one.
func (s *Source) Locate(p Problem) Problem {
	ptr := p.Pointer
	for p.Pos == nil {
		p.Pos = s.Position(ptr)
		if ptr == "" {
			break
		}
		ptr = ptr[:max(strings.LastIndexByte(ptr, '/'), 0)]
	}
	return p
}

// LoadOptions are what Load reads besides the files.
type LoadOptions struct {
	// Env looks up ${{ env "GATEHOUSE_VAR_X" }}; nil means os.LookupEnv.
	Env func(name string) (string, bool)
}

// Read reads one body (the admin API's): JSON or YAML, within
// doctree's bounds. It neither substitutes env expressions nor reads
// document_file specs (a body must not read the server's environment or
// files), and records no places: the admin API names values by pointer.
// Decode judges the tree's shape.
//
// A string value holding "${{" is refused: it is an expression only the
// CLI substitutes, and kept as it is it would become, say, an API key
// anyone reading the file could present. A spec's document is exempt: it
// is text served back as written (the CLI does not substitute a
// document_file either).
func Read(data []byte) (*Source, []Problem) {
	t, problems := doctree.Read(data, doctree.Options{What: "a configuration document"})
	if problems != nil {
		return nil, fromTree(problems, "")
	}
	var c collector
	unsubstituted(t.Root, "", &c)
	if ps := c.done(); len(ps) > 0 {
		return nil, ps
	}
	return &Source{Root: t.Root}, nil
}

// unsubstituted reports each string value under v (keys aside) that holds
// an env expression, specs' documents aside.
func unsubstituted(v any, ptr string, c *collector) {
	switch v := v.(type) {
	case string:
		if strings.Contains(v, "${{") {
			c.add(ptr, `holds "${{", and the server does not substitute ${{ env }}: send files with `+"`gatehouse config apply`"+`, which does`)
		}
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(v)) {
			if p := ptr + "/" + doctree.EscapeToken(k); !isSpecDocument(p) {
				unsubstituted(v[k], p, c)
			}
		}
	case []any:
		for i, e := range v {
			unsubstituted(e, ptr+"/"+strconv.Itoa(i), c)
		}
	}
}

// isSpecDocument reports whether ptr is /specs/N/document.
func isSpecDocument(ptr string) bool {
	rest, ok := strings.CutPrefix(ptr, "/specs/")
	i, member, _ := strings.Cut(rest, "/")
	_, err := strconv.Atoi(i)
	return ok && err == nil && member == "document"
}

// fromTree converts doctree's problems, placing them in file.
func fromTree(problems []doctree.Problem, file string) []Problem {
	out := make([]Problem, len(problems))
	for i, p := range problems {
		out[i] = Problem{Pointer: p.Pointer, Message: p.Message, Code: gatehouse.EINVALID}
		if p.Pos.Line > 0 || file != "" {
			out[i].Pos = &Pos{File: file, Line: p.Pos.Line, Column: p.Pos.Column}
		}
	}
	return out
}

// Load reads files and directories (a directory's *.yaml, *.yml and
// *.json files in name order, not recursive, entries whose names start
// with "." skipped), substitutes env expressions, reads document_file
// specs, and merges the files into one tree, each list the concatenation
// of the files' lists in order. Every file is a document of its own, with
// its own format_version, so that a stray YAML file in a directory is
// refused rather than silently read; a directory's file that a spec names
// as its document_file is that document, not a configuration file. A
// document_file's text is taken as it is, without env substitution: it
// is served back as written. Problems carry their place (a Pos
// with Line 0 is about a file as a whole); the Source is returned with
// them, to place the problems later stages find, but its tree is not to
// be applied.
func Load(paths []string, opts LoadOptions) (*Source, []Problem) {
	env := opts.Env
	if env == nil {
		env = os.LookupEnv
	}
	src := &Source{added: map[string]Pos{}}
	files, problems := listFiles(paths)
	for _, f := range files {
		f.tree, f.problems = readFile(f.name)
	}
	specs := namedDocumentFiles(files)
	var trees []any
	for _, f := range files {
		if f.inDir && slices.ContainsFunc(specs, func(s os.FileInfo) bool { return os.SameFile(s, f.info) }) {
			continue
		}
		if f.problems != nil {
			problems = append(problems, f.problems...)
			continue
		}
		if ps := checkTop(f); ps != nil {
			problems = append(problems, ps...)
			continue
		}
		src.files = append(src.files, &sourceFile{name: f.name, pos: f.tree.Pos, start: map[string]int{}, count: map[string]int{}})
		trees = append(trees, f.tree.Root)
	}
	merged := map[string]any{"format_version": FormatVersion}
	for _, kind := range lists {
		var list []any
		for i, f := range src.files {
			root, _ := trees[i].(map[string]any) // checkTop made sure
			entries, ok := root[kind].([]any)
			if ok {
				f.start[kind], f.count[kind] = len(list), len(entries)
				list = append(list, entries...)
			}
		}
		if list != nil {
			merged[kind] = list
		}
	}
	src.Root = merged
	var c collector
	c.problems = problems
	substitute(merged, "", env, &c)
	src.documentFiles(&c)
	for i, p := range c.problems {
		c.problems[i] = src.Locate(p)
	}
	return src, c.done()
}

// Files returns the files Load read: the configuration files merged, in
// order, then the documents read for specs' document_file. A caller
// watching for changes watches these (and the directories named).
func (s *Source) Files() []string {
	var out []string
	for _, f := range s.files {
		out = append(out, f.name)
	}
	return append(out, s.documents...)
}

// namedDocumentFiles returns the files that the documents name as
// specs' document_file. In a directory, such a file is the spec's
// document and not a configuration file: a ConfigMap, which cannot hold
// subdirectories, holds both side by side.
func namedDocumentFiles(files []*listedFile) []os.FileInfo {
	var out []os.FileInfo
	for _, f := range files {
		if f.tree == nil {
			continue
		}
		root, _ := f.tree.Root.(map[string]any)
		specs, _ := root["specs"].([]any)
		for _, s := range specs {
			spec, _ := s.(map[string]any)
			name, _ := spec["document_file"].(string)
			if !filepath.IsLocal(name) {
				continue
			}
			if fi, err := os.Stat(filepath.Join(filepath.Dir(f.name), name)); err == nil {
				out = append(out, fi)
			}
		}
	}
	return out
}

// isDocumentFile reports whether a directory's entry is one Load reads.
func isDocumentFile(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml", ".json":
		return !strings.HasPrefix(name, ".")
	}
	return false
}

// listedFile is a file Load reads, and what reading it gave.
type listedFile struct {
	name     string
	info     os.FileInfo
	inDir    bool // found in a directory, rather than named
	tree     *doctree.Tree
	problems []Problem
}

// listFiles expands paths into the files to read. A directory's hidden
// entries are skipped: a Kubernetes ConfigMap mounted as a directory
// holds each file as a symlink into ..data, itself a symlink to a
// ..2026_* directory, and only the symlinks at the top are its files. A
// file reached twice (named and in a named directory) is read once.
func listFiles(paths []string) ([]*listedFile, []Problem) {
	if len(paths) == 0 {
		return nil, []Problem{{Message: "names no configuration file or directory", Code: gatehouse.EINVALID}}
	}
	var files []*listedFile
	var problems []Problem
	fail := func(name, msg string) {
		problems = append(problems, Problem{Message: msg, Code: gatehouse.EINVALID, Pos: &Pos{File: name}})
	}
	add := func(name string, fi os.FileInfo, inDir bool) {
		if !slices.ContainsFunc(files, func(f *listedFile) bool { return os.SameFile(f.info, fi) }) {
			files = append(files, &listedFile{name: name, info: fi, inDir: inDir})
		}
	}
	for _, path := range paths {
		fi, err := os.Stat(path)
		if err != nil {
			fail(path, "cannot be read: "+pathError(err))
			continue
		}
		if !fi.IsDir() {
			add(path, fi, false)
			continue
		}
		entries, err := os.ReadDir(path)
		if err != nil {
			fail(path, "cannot be read: "+pathError(err))
			continue
		}
		before, failed := len(files), len(problems)
		for _, e := range entries { // in name order
			if !isDocumentFile(e.Name()) {
				continue
			}
			name := filepath.Join(path, e.Name())
			fi, err := os.Stat(name) // through a symlink
			switch {
			case err != nil:
				fail(name, "cannot be read: "+pathError(err))
			case fi.Mode().IsRegular():
				add(name, fi, true)
			}
		}
		if len(files) == before && len(problems) == failed {
			fail(path, "is a directory holding no *.yaml, *.yml or *.json file")
		}
	}
	return files, problems
}

// pathError is an error's text without the path, which the problem's
// place already gives.
func pathError(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// readFile reads one file into a tree with the place of every value.
func readFile(name string) (*doctree.Tree, []Problem) {
	f, err := os.Open(name)
	if err != nil {
		return nil, []Problem{{Message: "cannot be read: " + pathError(err), Code: gatehouse.EINVALID, Pos: &Pos{File: name}}}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, []Problem{{Message: "cannot be read: " + pathError(err), Code: gatehouse.EINVALID, Pos: &Pos{File: name}}}
	}
	if len(data) > MaxFileBytes {
		return nil, []Problem{{Message: fmt.Sprintf("is larger than %d MiB", MaxFileBytes>>20), Code: gatehouse.EINVALID, Pos: &Pos{File: name}}}
	}
	t, problems := doctree.Read(data, doctree.Options{What: "a configuration document", Positions: true})
	if problems != nil {
		return nil, fromTree(problems, name)
	}
	return t, nil
}

// checkTop checks a file's top level as Decode does, so that each
// problem there names its file: every file is a document of its own.
func checkTop(f *listedFile) []Problem {
	var c collector
	c.top(f.tree.Root)
	if len(c.problems) == 0 {
		return nil
	}
	one := &Source{files: []*sourceFile{{name: f.name, pos: f.tree.Pos}}}
	for i, p := range c.problems {
		c.problems[i] = one.Locate(p)
	}
	return c.problems
}

// substitute replaces every ${{ env "GATEHOUSE_VAR_NAME" }} in the
// string values of v (not in keys: they are the format's names).
func substitute(v any, ptr string, env func(string) (string, bool), c *collector) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if s, ok := e.(string); ok {
				v[k] = expand(s, ptr+"/"+doctree.EscapeToken(k), env, c)
			} else {
				substitute(e, ptr+"/"+doctree.EscapeToken(k), env, c)
			}
		}
	case []any:
		for i, e := range v {
			if s, ok := e.(string); ok {
				v[i] = expand(s, ptr+"/"+strconv.Itoa(i), env, c)
			} else {
				substitute(e, ptr+"/"+strconv.Itoa(i), env, c)
			}
		}
	}
}

// expand substitutes the env expressions of one string. Text that opens
// an expression but is not one is refused rather than kept: a mistyped
// expression for a secret must not become the secret.
func expand(s, ptr string, env func(string) (string, bool), c *collector) string {
	const open, close = "${{", "}}"
	if !strings.Contains(s, open) {
		return s
	}
	var b strings.Builder
	for {
		i := strings.Index(s, open)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		j := strings.Index(s[i:], close)
		if j < 0 {
			c.add(ptr, `has "${{" without a closing "}}"; an expression is ${{ env "`+EnvPrefix+`NAME" }}`)
			return s
		}
		expr := s[i : i+j+len(close)]
		name, ok := envName(expr[len(open) : len(expr)-len(close)])
		switch {
		case !ok:
			c.add(ptr, fmt.Sprintf(`has %s, which is not an expression gatehouse knows; write ${{ env "%sNAME" }}`, expr, EnvPrefix))
		case !strings.HasPrefix(name, EnvPrefix) || len(name) == len(EnvPrefix):
			c.add(ptr, fmt.Sprintf("names the environment variable %q, which a configuration may not read: only names starting with %s can be", name, EnvPrefix))
		default:
			if val, set := env(name); set {
				b.WriteString(val)
			} else {
				c.add(ptr, fmt.Sprintf("names the environment variable %s, which is not set", name))
			}
		}
		s = s[i+j+len(close):]
	}
}

// envName parses the inside of ${{ env "NAME" }}, spaces optional.
func envName(inner string) (string, bool) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(inner), "env")
	if !ok {
		return "", false
	}
	rest = strings.TrimSpace(rest)
	if len(rest) < 2 || rest[0] != '"' || rest[len(rest)-1] != '"' {
		return "", false
	}
	name := rest[1 : len(rest)-1]
	if name == "" || strings.ContainsFunc(name, func(r rune) bool {
		return !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9')
	}) {
		return "", false
	}
	return name, true
}

// documentFiles reads each spec's document_file into its document, and
// takes its media type from the file's extension unless one is given.
func (s *Source) documentFiles(c *collector) {
	specs, _ := s.Root.(map[string]any)["specs"].([]any)
	for i, e := range specs {
		spec, ok := e.(map[string]any)
		if !ok {
			continue
		}
		name, ok := spec["document_file"].(string)
		if !ok {
			continue // absent, or not a string, which Decode says
		}
		ptr := "/specs/" + strconv.Itoa(i)
		if spec["document"] != nil {
			c.add(ptr+"/document_file", "cannot be given with document: a spec's document is inline or in a file")
			continue
		}
		// The file naming it: a value inside a YAML alias's use has no
		// place of its own, but the alias has, in the same file.
		at := s.Locate(Problem{Pointer: ptr + "/document_file"}).Pos
		if at == nil {
			continue // only a body has no places, and Load reads files
		}
		text, msg := readDocumentFile(at.File, name)
		if msg != "" {
			c.add(ptr+"/document_file", msg)
			continue
		}
		s.documents = append(s.documents, filepath.Join(filepath.Dir(at.File), name))
		// A copy: an entry reached through a YAML alias is shared.
		spec = maps.Clone(spec)
		delete(spec, "document_file")
		spec["document"] = text
		s.added[ptr+"/document"] = *at
		if spec["media_type"] == nil {
			switch strings.ToLower(filepath.Ext(name)) {
			case ".json":
				spec["media_type"] = gatehouse.SpecJSON
				s.added[ptr+"/media_type"] = *at
			case ".yaml", ".yml":
				spec["media_type"] = gatehouse.SpecYAML
				s.added[ptr+"/media_type"] = *at
			}
		}
		specs[i] = spec
	}
}

// readDocumentFile reads name, relative to the directory of the file
// that names it, refusing any path that leads outside that directory (an
// absolute path, "..", or a symlink): the document is served back
// through the admin API, and a configuration must not be able to read
// the host's files.
func readDocumentFile(config, name string) (string, string) {
	if name == "" || !filepath.IsLocal(name) {
		return "", fmt.Sprintf("must be a path relative to the directory of %s, inside it", config)
	}
	dir := filepath.Dir(config)
	root, err := os.OpenRoot(dir)
	if err != nil {
		return "", "cannot be read: " + pathError(err)
	}
	defer root.Close()
	// os.Root follows symlinks only while they stay inside dir.
	f, err := root.Open(name)
	if err != nil {
		return "", fmt.Sprintf("cannot be read inside %s: %s", dir, pathError(err))
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return "", "must name a regular file"
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxDocumentFileBytes+1))
	if err != nil {
		return "", "cannot be read: " + pathError(err)
	}
	if len(data) > MaxDocumentFileBytes {
		return "", fmt.Sprintf("names a file larger than %d MiB, the bound on a spec's document", MaxDocumentFileBytes>>20)
	}
	return string(data), ""
}
