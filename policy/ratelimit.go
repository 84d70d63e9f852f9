package policy

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/httpx"
)

func init() { register(gatehouse.PolicyRateLimit, buildRateLimit) }

// Rate limits count with GCRA, the generic cell rate algorithm. A limit of
// Requests per period with burst B has the emission interval
// T = period/Requests and the burst tolerance τ = T*(B-1). Each counter
// is one number, the theoretical arrival time (TAT) of the next request.
// A request at now is admitted if max(TAT, now) - now <= τ, and then
// TAT becomes max(TAT, now) + T. So a fresh counter admits B requests at
// once, and then one every T; a counter idle for B*T is fresh again.
//
// Everything the headers say derives from d, the TAT minus now after the
// request (or as it stands, if refused):
//
//   - remaining: floor((τ + T - d) / T), the requests that could come at
//     once now;
//   - the wait before a refused request would be admitted: d - τ
//     (Retry-After, rounded up to whole seconds, at least 1);
//   - RateLimit's t: that wait when remaining is 0, else d, the time until
//     the whole burst is available again, in whole seconds rounded up.
//
// Admitted and refused requests alike carry, per
// draft-ietf-httpapi-ratelimit-headers (structured fields),
// RateLimit-Policy: "<name>";q=<requests>;w=<period in seconds> and
// RateLimit: "<name>";r=<remaining>;t=<t>. An upstream's own fields of
// those names replace them on its response. A limit that did not count a
// request (Redis unreachable, fallback allow) reports nothing.
//
// Counters are per (policy, route, key): a policy listed on several
// routes, or attached to a service or globally, counts each route apart.
// The key is what By names: the consumer's id (a request without a
// consumer, that no auth policy identified, is keyed by its client
// address, so that anonymous clients do not share one counter); the
// route alone (one counter per route, per node or cluster-wide); or the
// client address as the trusted proxies let it be seen (Request.Client;
// IPv6 clients by their whole address). Clients whose address cannot be
// read share the key of the zero address.
//
// Local counters live in the data plane's State under Build.StateKey, so
// they survive redeploys of an unchanged policy and start afresh when it
// changes (its version is in the key); Redis keys carry the same key.
//
// Several rate-limit policies on one route all count, and a request one
// of them refuses consumes none of them: local limits are taken in turn
// (an atomic step per counter), and if one refuses, those already taken
// are given back; the Redis limits of a route are decided together in one
// script, all or nothing, after the local ones admitted the request (so a
// refused request costs no Redis round trip), and if Redis refuses, the
// local ones are given back. A concurrent request may see a unit taken
// that is given back a moment later, so at the limit's edge the gateway
// errs on the side of refusing. The headers report the most restrictive
// limit: on refusal, the refusing limit with the longest wait (of the
// local limits, and of the Redis ones if they were asked); otherwise the
// one with the fewest remaining requests (of equals, the longest t).
//
// A request admitted here that a later Step refuses (an open circuit, a
// body failing the schema) gets its units back: a refused request changes
// nothing. Those counted in Redis go back in one round trip in the
// background, unless Redis is failing or too many give-backs are under
// way. Units of a request whose upstream fails are not given back: it
// was served, badly.

// maxTolerance bounds τ (about 31 years), so that a huge burst on a slow
// rate cannot overflow the nanosecond arithmetic; such a limit is in
// practice no limit.
const maxTolerance = int64(1e18)

// rateLimit is a route's rate-limit policies, compiled.
type rateLimit struct {
	limits []*limit
	// redis decides the limits with store redis, nil if none.
	redis *redisLimits
	now   func() time.Time
}

// limit is one rate-limit policy on one route.
type limit struct {
	by string
	// interval and tolerance are T and τ in nanoseconds, as counted
	// locally.
	interval, tolerance int64
	// local counts the policy on this node: its counters for store local;
	// for store redis, the fallback's, or nil if the fallback is allow.
	local *localLimiter
	// redis: the policy counts in Redis; redisKey is its part of the keys.
	redis    bool
	redisKey string
	// quoted is the policy's name as a structured-field string.
	quoted       string
	policyHeader []string
	err          *gatehouse.Error
}

func buildRateLimit(b *Build, pols []*gatehouse.Policy) (Step, error) {
	cfgs, err := configs[gatehouse.RateLimitConfig](pols)
	if err != nil {
		return nil, err
	}
	s := &rateLimit{now: b.Env.Now}
	inRedis := false
	for i, c := range cfgs {
		p := pols[i]
		period := c.Period()
		interval := int64(period) / int64(c.Requests)
		burst := int64(max(c.Burst, 1))
		tolerance := maxTolerance
		if burst-1 <= maxTolerance/interval {
			tolerance = interval * (burst - 1)
		}
		unit := "requests"
		if c.Requests == 1 {
			unit = "request"
		}
		quoted := sfString(p.Name)
		l := &limit{by: c.By, interval: interval, tolerance: tolerance, quoted: quoted,
			policyHeader: []string{fmt.Sprintf("%s;q=%d;w=%d", quoted, c.Requests, int64(period/time.Second))},
			err:          gatehouse.Errorf(gatehouse.ETOOMANY, "Rate limit exceeded: %d %s per %s.", c.Requests, unit, c.Per)}
		key := b.StateKey(p, true)
		newLocal := func() *localLimiter { return newLocalLimiter(interval, tolerance, c.By == gatehouse.RateByRoute) }
		switch c.Store {
		case gatehouse.StoreRedis:
			if b.Env.Redis == nil {
				return nil, fmt.Errorf("policy %q counts in Redis, but this node has no --redis-url", p.Name)
			}
			l.redis, l.redisKey = true, key
			if c.Fallback == gatehouse.StoreLocal {
				l.local = Get(b.Env.State, key+"#fallback", newLocal)
			}
			inRedis = true
		default:
			l.local = Get(b.Env.State, key, newLocal)
		}
		s.limits = append(s.limits, l)
	}
	if inRedis {
		s.redis = newRedisLimits(b, s.limits)
	}
	return s, nil
}

// sfString encodes s as a structured-field string (RFC 9651). Policy
// names cannot hold '"' or '\', but escaping costs nothing at build time.
func sfString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(s) + `"`
}

// verdict is what one limit made of a request.
type verdict struct {
	// d is the TAT minus now, in ns: after the request if it was
	// admitted, as it stands if refused.
	d int64
	// counted is false for a limit that did not count (fallback allow).
	counted  bool
	admitted bool
	// taken is the local counter to give back should another limit
	// refuse the request.
	taken *cell
	// interval and tolerance are those of the store that counted.
	interval, tolerance int64
}

func (v *verdict) remaining() int64 {
	return max(0, (v.tolerance+v.interval-v.d)/v.interval)
}

// wait is how long until the limit admits a request, in ns.
func (v *verdict) wait() int64 { return max(0, v.d-v.tolerance) }

// reset is RateLimit's t, in ns.
func (v *verdict) reset() int64 {
	if v.remaining() == 0 {
		return v.wait()
	}
	return max(0, v.d)
}

// stackLimits is how many limits' verdicts a request keeps on the stack;
// a route with more (there may be any number of global policies) has them
// allocated.
const stackLimits = 8

func (s *rateLimit) Check(r *Request) error {
	now := s.now().UnixNano()
	var stack [stackLimits]verdict
	vs := stack[:]
	if len(s.limits) > len(stack) {
		vs = make([]verdict, len(s.limits))
	}
	vs = vs[:len(s.limits)]
	for i, l := range s.limits {
		if l.redis {
			continue
		}
		if !l.takeLocal(r, now, &vs[i]) {
			s.peekRest(r, now, vs, i)
			return s.refuse(r, vs)
		}
	}
	var inRedis []string
	if s.redis != nil {
		var admitted bool
		if admitted, inRedis = s.redis.take(r, now, s.limits, vs); !admitted {
			return s.refuse(r, vs)
		}
	}
	s.refundIfRefused(r, vs, inRedis)
	best := -1
	for i := range vs {
		v := &vs[i]
		if !v.counted {
			continue
		}
		if best < 0 || v.remaining() < vs[best].remaining() ||
			v.remaining() == vs[best].remaining() && v.reset() > vs[best].reset() {
			best = i
		}
	}
	if best >= 0 {
		v := &vs[best]
		s.limits[best].setHeaders(r.W.Header(), v.remaining(), httpx.CeilSeconds(time.Duration(v.reset())))
	}
	return nil
}

// refundIfRefused has the units r took, local ones and those counted in
// Redis under inRedis, given back should a later Step refuse it.
func (s *rateLimit) refundIfRefused(r *Request, vs []verdict, inRedis []string) {
	var held []heldUnit
	for i := range vs {
		if c := vs[i].taken; c != nil {
			held = append(held, heldUnit{s.limits[i].local, c})
		}
	}
	if len(held) == 0 && inRedis == nil {
		return
	}
	r.OnDone(func(o Outcome) {
		if o.Refused {
			for _, h := range held {
				h.limiter.giveBack(h.cell)
			}
			if inRedis != nil {
				s.redis.giveBack(inRedis)
			}
		}
	})
}

type heldUnit struct {
	limiter *localLimiter
	cell    *cell
}

// takeLocal counts r in l's local counters (l.local is not nil).
func (l *limit) takeLocal(r *Request, now int64, v *verdict) bool {
	c, d, ok := l.local.take(l.key(r), now)
	*v = verdict{d: d, counted: true, admitted: ok, interval: l.interval, tolerance: l.tolerance}
	if ok {
		v.taken = c
	}
	return ok
}

// peekRest fills in the verdicts of the local limits after the refusing
// one, i, without counting, so that Retry-After is the longest wait.
func (s *rateLimit) peekRest(r *Request, now int64, vs []verdict, i int) {
	for j := i + 1; j < len(vs); j++ {
		l := s.limits[j]
		if l.redis {
			continue
		}
		d := l.local.peek(l.key(r), now)
		vs[j] = verdict{d: d, counted: true, admitted: d <= l.tolerance, interval: l.interval, tolerance: l.tolerance}
	}
}

// refuse gives back what the request took and answers it 429, reporting
// the refusing limit with the longest wait.
func (s *rateLimit) refuse(r *Request, vs []verdict) error {
	worst := -1
	for i := range vs {
		v := &vs[i]
		if v.taken != nil {
			s.limits[i].local.giveBack(v.taken)
			v.taken = nil
		}
		if v.counted && !v.admitted && (worst < 0 || v.wait() > vs[worst].wait()) {
			worst = i
		}
	}
	if worst < 0 {
		// Not reached: a refusal has a refusing verdict.
		return gatehouse.Internal(fmt.Errorf("rate limit refused without a refusing limit"))
	}
	v, l := &vs[worst], s.limits[worst]
	wait := httpx.RetrySeconds(time.Duration(v.wait()))
	h := r.W.Header()
	h["Retry-After"] = []string{strconv.FormatInt(wait, 10)}
	l.setHeaders(h, 0, wait)
	return l.err
}

// key is the local counter's key of r.
func (l *limit) key(r *Request) limitKey {
	switch l.by {
	case gatehouse.RateByRoute:
		return limitKey{}
	case gatehouse.RateByConsumer:
		if r.Consumer != nil {
			return limitKey{id: r.Consumer.ID}
		}
	}
	return limitKey{addr: r.Client}
}

// setHeaders sets RateLimit-Policy and RateLimit
// (draft-ietf-httpapi-ratelimit-headers) for this limit.
func (l *limit) setHeaders(h http.Header, remaining, reset int64) {
	h["Ratelimit-Policy"] = l.policyHeader
	var buf [160]byte
	b := append(buf[:0], l.quoted...)
	b = append(b, ";r="...)
	b = strconv.AppendInt(b, remaining, 10)
	b = append(b, ";t="...)
	b = strconv.AppendInt(b, reset, 10)
	h["Ratelimit"] = []string{string(b)}
}
