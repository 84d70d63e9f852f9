package audit

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultMaxEntries bounds a Recorder's distinct (route, operation,
// status, rule) entries when its options set no cap.
const DefaultMaxEntries = 10000

// Key is what a Recorder counts findings by.
// Its JSON, and Sample's and Entry's, is the form of a published
// Snapshot.
type Key struct {
	RouteID   string `json:"route_id"`
	Operation string `json:"operation"`
	Status    int    `json:"status"`
	Rule      string `json:"rule"`
}

// Sample is one recent finding of an entry.
type Sample struct {
	RequestID string `json:"request_id"`
	Method    string `json:"method"`
	Path      string `json:"path"`
	Status    int    `json:"status"`
	Detail    string `json:"detail"`
}

// Entry is the aggregate of one Key's findings.
type Entry struct {
	Key
	Severity  Severity  `json:"severity"`
	Count     int64     `json:"count"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	Sample    Sample    `json:"sample"`
}

// Counter counts; a Prometheus counter is one.
type Counter interface{ Inc() }

// RecorderOptions configures a Recorder.
type RecorderOptions struct {
	// MaxEntries caps the distinct keys kept; 0 means DefaultMaxEntries.
	// Findings of a key beyond the cap are dropped and counted.
	MaxEntries int
	// Counter, if set, returns the counter of a new key's findings, once
	// per key kept (so its series are bounded by the cap too).
	Counter func(k Key, s Severity) Counter
	// Dropped, if set, counts the findings dropped at the cap.
	Dropped Counter
}

// Recorder is the data plane's Sink: it aggregates findings per Key,
// within a cap on the keys it keeps. Record takes a read lock for a known
// key and the write lock only to add one; it does no I/O.
type Recorder struct {
	opts    RecorderOptions
	mu      sync.RWMutex
	entries map[Key]*entry
	dropped atomic.Int64
}

type entry struct {
	severity Severity
	first    time.Time
	count    atomic.Int64
	last     atomic.Int64 // UnixNano
	sample   atomic.Pointer[Finding]
	counter  Counter
}

// NewRecorder returns an empty Recorder.
func NewRecorder(opts RecorderOptions) *Recorder {
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = DefaultMaxEntries
	}
	return &Recorder{opts: opts, entries: map[Key]*entry{}}
}

var _ Sink = (*Recorder)(nil)

// Record counts f under its key. It copies f.
func (rc *Recorder) Record(f *Finding) {
	k := Key{RouteID: f.RouteID, Operation: f.Operation, Status: f.Status, Rule: f.Rule}
	rc.mu.RLock()
	e := rc.entries[k]
	rc.mu.RUnlock()
	if e == nil {
		if e = rc.add(k, f.At); e == nil {
			rc.dropped.Add(1)
			if rc.opts.Dropped != nil {
				rc.opts.Dropped.Inc()
			}
			return
		}
	}
	e.count.Add(1)
	at := f.At.UnixNano()
	for {
		// The latest finding's time wins, whatever order callers race in.
		old := e.last.Load()
		if at <= old || e.last.CompareAndSwap(old, at) {
			break
		}
	}
	sample := *f
	e.sample.Store(&sample)
	if e.counter != nil {
		e.counter.Inc()
	}
}

// add returns k's entry, made if the cap allows; nil if it does not.
func (rc *Recorder) add(k Key, at time.Time) *entry {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if e := rc.entries[k]; e != nil {
		return e
	}
	if len(rc.entries) >= rc.opts.MaxEntries {
		return nil
	}
	e := &entry{severity: SeverityOf(k.Rule), first: at}
	if rc.opts.Counter != nil {
		e.counter = rc.opts.Counter(k, e.severity)
	}
	rc.entries[k] = e
	return e
}

// Dropped returns how many findings the cap dropped.
func (rc *Recorder) Dropped() int64 { return rc.dropped.Load() }

// Len returns the number of keys kept.
func (rc *Recorder) Len() int {
	rc.mu.RLock()
	defer rc.mu.RUnlock()
	return len(rc.entries)
}

// Filter selects entries; a zero field matches every value.
type Filter struct {
	RouteID  string
	Rule     string
	Severity Severity
	Status   int
}

// Match reports whether f selects e.
func (f *Filter) Match(e *Entry) bool { return f.match(e.Key, e.Severity) }

func (f *Filter) match(k Key, s Severity) bool {
	return (f.RouteID == "" || f.RouteID == k.RouteID) && (f.Rule == "" || f.Rule == k.Rule) &&
		(f.Severity == "" || f.Severity == s) && (f.Status == 0 || f.Status == k.Status)
}

// Entries returns the entries f selects, ordered by route, operation,
// status and rule.
func (rc *Recorder) Entries(f Filter) []Entry {
	rc.mu.RLock()
	out := make([]Entry, 0, len(rc.entries))
	for k, e := range rc.entries {
		if !f.match(k, e.severity) {
			continue
		}
		en := Entry{Key: k, Severity: e.severity, Count: e.count.Load(), FirstSeen: e.first,
			LastSeen: time.Unix(0, e.last.Load()).UTC()}
		if s := e.sample.Load(); s != nil {
			en.Sample = Sample{RequestID: s.RequestID, Method: s.Method, Path: s.Path, Status: s.Status, Detail: s.Detail}
		}
		if en.Count == 0 {
			continue // being added: its first finding is on its way
		}
		out = append(out, en)
	}
	rc.mu.RUnlock()
	sortEntries(out)
	return out
}

// sortEntries orders entries by route, operation, status and rule: the
// report's order.
func sortEntries(es []Entry) {
	slices.SortFunc(es, func(a, b Entry) int {
		return cmp.Or(cmp.Compare(a.RouteID, b.RouteID), cmp.Compare(a.Operation, b.Operation),
			cmp.Compare(a.Status, b.Status), cmp.Compare(a.Rule, b.Rule))
	})
}
