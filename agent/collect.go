package agent

import (
	"archive/zip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kanade/kanade-agent/internal/fsutil"
	"github.com/kanade/kanade-agent/subject"
	"github.com/kanade/kanade-agent/wire"
	"github.com/nats-io/nats.go/jetstream"
)

// File collection (upstream's collect.rs).
//
// A command with a collect hint that exits 0 prints a JSON object (the
// #KANADE-COLLECT fenced block when there is one) listing files: either
// {"<files_field>": [paths]} (one unlabeled bundle) or
// {"bundles": [{"label": "...", "files": [paths]}, ...]} (one bundle each).
// Each bundle is zipped (Deflate, entries named by base name, a repeated
// name prefixed "1_", "2_", ...) and uploaded to the collections object
// store under <pc_id>/<job_id>/<ts>.zip, or <pc_id>/<job_id>/<label>__<ts>.zip
// for a labeled one (label characters other than [A-Za-z0-9.-] become '-',
// a repeated label gets -2, -3, ...); ts is the run's finish time in UTC,
// 20060102T150405.000Z. The first uploaded key is the result's
// collect_object; every problem is a note in its stderr.
//
// As upstream: a missing or unreadable file is skipped (noted) and the
// bundle uploads without it; a bundle whose files add up to more than
// max_size (default 50 MB) is not uploaded at all (noted), the others
// still are; nothing is collected from a run that did not exit 0.
//
// Ours: files are streamed from disk into a zip in the private staging
// dir and streamed to the object store, never held in memory (reading a
// bundle's files is bounded to collectBuildTimeout and stops on kill, its
// upload to collectUploadTimeout);
// Options.CollectMaxSize (default 1 GiB) caps every bundle whatever
// max_size says; a file that grows past the cap while read fails its
// bundle. A listed path must be absolute without ".." elements, must not
// be a symbolic link (nor swapped for one while opened), and neither it
// nor its resolved form may be in the agent's data dir or be one of its
// credential or keyring files; with Options.CollectRoots it must be inside
// one of them, also once resolved, so no symbolic link leads out.

// collectUploadTimeout bounds the upload of one bundle, and
// collectBuildTimeout the reading of its files (checked between reads: a
// read the OS never returns from is not interrupted).
const (
	collectUploadTimeout = 10 * time.Minute
	collectBuildTimeout  = 10 * time.Minute
)

// ctxReader fails once ctx ends, between reads.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// maxCollectNotes bounds the skipped-file notes of one run.
const maxCollectNotes = 20

// bundleResult is one uploaded bundle, as KANADE_COLLECT_RESULT lists it
// (fields in the order serde_json writes a json! object: sorted).
type bundleResult struct {
	Files    []string `json:"files"`
	Key      string   `json:"key"`
	Label    *string  `json:"label"`
	Uploaded bool     `json:"uploaded"`
}

// collectResultJSON is upstream's collect_result_json: what a collect
// job's finalize hook finds in KANADE_COLLECT_RESULT.
func collectResultJSON(bundles []bundleResult) string {
	if bundles == nil {
		bundles = []bundleResult{}
	}
	b, _ := wire.Marshal(struct {
		Bundles []bundleResult `json:"bundles"`
		OK      bool           `json:"ok"`
	}{bundles, len(bundles) > 0})
	return string(b)
}

type requestedBundle struct {
	label *string
	files []string
}

// parseBundles reads the collect payload as upstream's parse_bundles.
func parseBundles(payload, filesField string) ([]requestedBundle, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(payload), &obj); err != nil {
		return nil, fmt.Errorf("collect: stdout is not valid JSON: %v", err)
	}
	var arr []map[string]json.RawMessage
	if raw, ok := obj["bundles"]; ok && json.Unmarshal(raw, &arr) == nil && arr != nil {
		out := make([]requestedBundle, 0, len(arr))
		for i, b := range arr {
			var rb requestedBundle
			var label string
			if json.Unmarshal(b["label"], &label) == nil && b["label"] != nil && string(b["label"]) != "null" {
				rb.label = &label
			}
			files, err := stringArray(b["files"], fmt.Sprintf("bundles[%d].files", i))
			if err != nil {
				return nil, err
			}
			rb.files = files
			out = append(out, rb)
		}
		return out, nil
	}
	files, err := stringArray(obj[filesField], filesField)
	if err != nil {
		return nil, err
	}
	return []requestedBundle{{files: files}}, nil
}

func stringArray(raw json.RawMessage, field string) ([]string, error) {
	if raw == nil {
		return nil, fmt.Errorf("collect: stdout JSON has no '%s'", field)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil || items == nil {
		return nil, fmt.Errorf("collect: '%s' is not an array", field)
	}
	var out []string
	for _, it := range items {
		var s string
		if err := json.Unmarshal(it, &s); err != nil {
			return nil, fmt.Errorf("collect: '%s' entry is not a string", field)
		}
		if strings.TrimSpace(s) != "" {
			out = append(out, s)
		}
	}
	return out, nil
}

func sanitizeLabel(l string) string {
	var b strings.Builder
	for _, r := range l {
		if r < 128 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-') {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	if b.Len() == 0 {
		return "bundle"
	}
	return b.String()
}

// dedupLabel is upstream's dedup_label: the first unlabeled bundle stays
// unlabeled, a repeat gets -2, -3, ...
func dedupLabel(used map[string]bool, label *string) *string {
	base := ""
	if label != nil {
		base = *label
	}
	if !used[base] {
		used[base] = true
		return label
	}
	stem := base
	if stem == "" {
		stem = "bundle"
	}
	for n := 2; ; n++ {
		c := fmt.Sprintf("%s-%d", stem, n)
		if !used[c] {
			used[c] = true
			return &c
		}
	}
}

// collect bundles and uploads the files cmd's clean run listed in stdout.
// perBundle, when set, runs after each upload (finalize on_each_bundle),
// with the bundle's index in the requested list.
func (a *Agent) collect(ctx context.Context, cmd *wire.Command, stdout string, finished time.Time, notes *[]string,
	perBundle func(idx int, b bundleResult)) []bundleResult {
	hint := cmd.Collect
	note := func(format string, args ...any) {
		*notes = append(*notes, "kanade-agent: "+fmt.Sprintf(format, args...))
	}
	requested, err := parseBundles(wire.FencedPayload(stdout, wire.CollectBlockBegin, wire.CollectBlockEnd), hint.EffectiveFilesField())
	if err != nil {
		note("%v; nothing collected", err)
		return nil
	}
	empty := true
	for _, b := range requested {
		empty = empty && len(b.files) == 0
	}
	if empty {
		note("collect: file list is empty; nothing collected")
		return nil
	}
	maxBytes := min(hint.MaxSizeBytes(), a.opts.CollectMaxSize)
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	store, err := a.js.ObjectStore(octx, subject.ObjectCollections)
	cancel()
	if err != nil {
		note("collect: object store %s: %v; nothing collected", subject.ObjectCollections, err)
		return nil
	}
	ts := finished.UTC().Format("20060102T150405.000Z")
	used := map[string]bool{}
	skippedNotes := 0
	var out []bundleResult
	for idx, b := range requested {
		if len(b.files) == 0 {
			continue
		}
		var label *string
		name := "(unlabeled)"
		if b.label != nil {
			l := sanitizeLabel(*b.label)
			label, name = &l, l
		}
		zipPath, packed, skipped, err := a.buildZip(ctx, b.files, maxBytes)
		for _, s := range skipped {
			if skippedNotes++; skippedNotes <= maxCollectNotes {
				note("collect: bundle %s: %s", name, s)
			}
		}
		if err != nil {
			note("collect: bundle %s not uploaded: %v", name, err)
			continue
		}
		label = dedupLabel(used, label)
		key := fmt.Sprintf("%s/%s/%s.zip", a.opts.PcID, cmd.ID, ts)
		if label != nil {
			key = fmt.Sprintf("%s/%s/%s__%s.zip", a.opts.PcID, cmd.ID, *label, ts)
		}
		err = a.uploadBundle(ctx, store, key, zipPath)
		os.Remove(zipPath)
		if err != nil {
			note("collect: bundle %s not uploaded: %v", name, err)
			continue
		}
		a.log.Info("collect bundle uploaded", "key", key, "files", len(packed))
		br := bundleResult{Files: packed, Key: key, Label: label, Uploaded: true}
		if perBundle != nil {
			perBundle(idx, br)
		}
		out = append(out, br)
	}
	if skippedNotes > maxCollectNotes {
		note("collect: %d more files skipped", skippedNotes-maxCollectNotes)
	}
	if len(out) == 0 {
		note("collect: no bundles uploaded")
	}
	return out
}

func (a *Agent) uploadBundle(ctx context.Context, store jetstream.ObjectStore, key, zipPath string) error {
	f, err := os.Open(zipPath)
	if err != nil {
		return err
	}
	defer f.Close()
	uctx, cancel := context.WithTimeout(ctx, collectUploadTimeout)
	defer cancel()
	_, err = store.Put(uctx, jetstream.ObjectMeta{Name: key}, f)
	return err
}

// buildZip zips files into a new file in the staging dir. It returns the
// zip's path, the files packed and a note for each file skipped; an error
// means no zip (over the cap, nothing readable, a write failure).
func (a *Agent) buildZip(ctx context.Context, files []string, maxBytes int64) (path string, packed, skipped []string, err error) {
	ctx, cancel := context.WithTimeout(ctx, collectBuildTimeout)
	defer cancel()
	f, err := os.CreateTemp(a.stageDir, "collect-*.zip")
	if err != nil {
		return "", nil, nil, err
	}
	path = f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(path)
			path, packed = "", nil
		}
	}()
	zw := zip.NewWriter(f)
	names := map[string]bool{}
	var total int64
	for _, p := range files {
		src, info, why := a.openCollectable(p)
		if why != nil {
			skipped = append(skipped, fmt.Sprintf("skipped %q: %v", p, why))
			continue
		}
		if total+info.Size() > maxBytes {
			src.Close()
			return "", nil, skipped, fmt.Errorf("bundle exceeds max_size (%d + %d > %d bytes) at file %q", total, info.Size(), maxBytes, p)
		}
		base := filepath.Base(filepath.Clean(p))
		name := base
		for n := 1; names[name]; n++ {
			name = fmt.Sprintf("%d_%s", n, base)
		}
		names[name] = true
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: info.ModTime()})
		if err != nil {
			src.Close()
			return "", nil, skipped, err
		}
		n, err := io.Copy(w, ctxReader{ctx, io.LimitReader(src, maxBytes-total+1)})
		src.Close()
		if err != nil {
			return "", nil, skipped, fmt.Errorf("reading %q: %v", p, err)
		}
		if total+n > maxBytes {
			return "", nil, skipped, fmt.Errorf("bundle exceeds max_size (%d bytes): %q grew while read", maxBytes, p)
		}
		total += n
		packed = append(packed, p)
	}
	if len(packed) == 0 {
		return "", nil, skipped, errors.New("no readable files to bundle")
	}
	if err := zw.Close(); err != nil {
		return "", nil, skipped, err
	}
	if err := f.Close(); err != nil {
		return "", nil, skipped, err
	}
	return path, packed, skipped, nil
}

// openCollectable opens p for a bundle when the rules above allow it.
func (a *Agent) openCollectable(p string) (*os.File, os.FileInfo, error) {
	if !filepath.IsAbs(p) {
		return nil, nil, errors.New("not an absolute path")
	}
	for _, el := range strings.FieldsFunc(filepath.ToSlash(p), func(r rune) bool { return r == '/' }) {
		if el == ".." {
			return nil, nil, errors.New("has a .. element")
		}
	}
	clean := filepath.Clean(p)
	li, err := os.Lstat(clean)
	if err != nil {
		return nil, nil, err
	}
	if li.Mode()&os.ModeSymlink != 0 {
		return nil, nil, errors.New("is a symbolic link")
	}
	if !li.Mode().IsRegular() {
		return nil, nil, errors.New("not a regular file")
	}
	real, err := filepath.EvalSymlinks(clean)
	if err != nil {
		return nil, nil, err
	}
	for _, d := range a.collectDenied() {
		if within(clean, d) || within(real, d) {
			return nil, nil, errors.New("is the agent's own data or credentials")
		}
	}
	if len(a.opts.CollectRoots) > 0 {
		ok := false
		for _, r := range a.opts.CollectRoots {
			rr, err := filepath.EvalSymlinks(r)
			if err != nil {
				rr = filepath.Clean(r)
			}
			if within(clean, filepath.Clean(r)) && within(real, rr) {
				ok = true
				break
			}
		}
		if !ok {
			return nil, nil, errors.New("outside the collect roots")
		}
	}
	f, err := os.Open(clean)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil || !os.SameFile(li, fi) {
		f.Close()
		if err == nil {
			err = errors.New("changed while opened")
		}
		return nil, nil, err
	}
	return f, fi, nil
}

// collectDenied lists the paths never collected, each also resolved.
func (a *Agent) collectDenied() []string {
	o := a.opts
	var out []string
	for _, p := range []string{o.DataDir, o.Credentials.CredsFile, o.Credentials.NKeySeedFile, o.KeyringFile, o.ReleaseKeyringFile} {
		if p == "" {
			continue
		}
		if abs, err := filepath.Abs(p); err == nil {
			out = append(out, abs)
			if r, err := filepath.EvalSymlinks(abs); err == nil && r != abs {
				out = append(out, r)
			}
		}
	}
	return out
}

// within reports whether p is dir or inside it (lexically; case-insensitive
// on Windows, as filepath.Rel).
func within(p, dir string) bool {
	rel, err := filepath.Rel(dir, p)
	if err != nil || filepath.IsAbs(rel) {
		return false
	}
	return rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// sweepJobTemps removes what a crash may have left of collect bundles
// being built and of the check cache being written.
func (a *Agent) sweepJobTemps() {
	if m, err := filepath.Glob(filepath.Join(a.stageDir, "collect-*.zip")); err == nil {
		for _, p := range m {
			os.Remove(p)
		}
	}
	fsutil.SweepTemp(a.checks.path)
}
