package forward

// maxSchedule bounds a schedule's length. Weights are reduced by their
// greatest common divisor first, so gatehouse's limits (64 targets of
// weight at most 1000) stay under it; larger weights are scaled down.
const maxSchedule = 1 << 16

// schedule is one cycle of smooth weighted round-robin over the targets
// that are live when it is built: target indices in the order nginx's
// algorithm picks them (weights 5:1:1 give a a b a c a a), so that a walk
// with an atomic counter balances exactly over each cycle without a lock.
type schedule struct {
	order   []uint8 // target indices; len ≤ maxSchedule
	members uint64  // bit i set when target i is in order
}

// newSchedule builds the cycle for weights (0 or less: left out).
func newSchedule(weights []int) *schedule {
	s := &schedule{}
	g, total := 0, 0
	for i, w := range weights {
		if w > 0 {
			g = gcd(g, w)
			s.members |= 1 << i
		}
	}
	if g == 0 {
		return s
	}
	ws := make([]int, len(weights))
	for i, w := range weights {
		if w > 0 {
			ws[i] = w / g
			total += ws[i]
		}
	}
	if total > maxSchedule {
		scaled := 0
		for i, w := range ws {
			if w > 0 {
				ws[i] = max(1, w*(maxSchedule/2)/total)
				scaled += ws[i]
			}
		}
		total = scaled
	}
	// nginx's smooth weighted round-robin: every step each target gains its
	// weight, the richest is chosen (the first on a tie) and pays the total.
	s.order = make([]uint8, total)
	cur := make([]int, len(ws))
	for k := range s.order {
		best := -1
		for i, w := range ws {
			if w <= 0 {
				continue
			}
			cur[i] += w
			if best < 0 || cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total
		s.order[k] = uint8(best)
	}
	return s
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// pick chooses a target not in tried (a bit set per index): an ejected
// target due its trial first, else the next live target in the schedule.
// It takes no lock and does not allocate.
func (p *Pool) pick(tried uint64) (int, bool) {
	if at := p.trialAt.Load(); at != 0 {
		if i, ok := p.trial(at, tried); ok {
			return i, true
		}
	}
	s := p.sched.Load()
	if s.members&^tried == 0 {
		return 0, false
	}
	n := uint64(len(s.order))
	if n == 1 {
		return int(s.order[0]), true
	}
	c := p.next.Add(1) - 1
	for k := uint64(0); ; k++ {
		// Terminates: some member is untried, and every member is in order.
		if i := s.order[(c+k)%n]; tried&(1<<i) == 0 {
			return int(i), true
		}
	}
}

// trial lets one request through to an ejected target whose rest is over,
// if at (the pool's trialAt) has passed. Winning the compare-and-swap on the
// target's ejectedUntil is what makes the request the only trial: the loser
// sees the new, later time.
func (p *Pool) trial(at int64, tried uint64) (int, bool) {
	now := p.now().UnixNano()
	if now < at {
		return 0, false
	}
	found := -1
	for i := range p.targets {
		t := &p.targets[i]
		if tried&(1<<i) != 0 || t.Weight <= 0 || t.down.Load() {
			continue
		}
		if eu := t.ejectedUntil.Load(); eu != 0 && eu <= now && t.ejectedUntil.CompareAndSwap(eu, now+int64(p.ejectFor)) {
			found = i
			break
		}
	}
	// trialAt is now stale-early; whoever gets the lock corrects it.
	if p.mu.TryLock() {
		p.trialAt.Store(p.earliestTrial())
		p.mu.Unlock()
	}
	return found, found >= 0
}

// rebuild recomputes the schedule and trialAt from the targets' health.
// It is called after every change of a target's membership (ejected,
// reinstated, marked down or up); the last caller sees every change.
func (p *Pool) rebuild() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rebuildLocked()
}

// rebuildLocked is rebuild for a caller that holds p.mu.
func (p *Pool) rebuildLocked() {
	weights := make([]int, len(p.targets))
	for i := range p.targets {
		t := &p.targets[i]
		if t.Weight > 0 && !t.down.Load() && t.ejectedUntil.Load() == 0 {
			weights[i] = t.Weight
		}
	}
	p.sched.Store(newSchedule(weights))
	p.trialAt.Store(p.earliestTrial())
}

// earliestTrial returns when the first ejected (and not down) target is
// due its trial, in unix ns, or 0. Callers hold p.mu.
func (p *Pool) earliestTrial() int64 {
	var at int64
	for i := range p.targets {
		t := &p.targets[i]
		if t.Weight <= 0 || t.down.Load() {
			continue
		}
		if eu := t.ejectedUntil.Load(); eu != 0 && (at == 0 || eu < at) {
			at = eu
		}
	}
	return at
}
