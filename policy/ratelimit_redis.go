package policy

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse"
)

// Cluster-wide rate limits count in Redis, in one Lua script per request
// that decides all of a route's Redis limits at once, all or nothing, on
// Redis's clock (TIME), so that the nodes' clocks do not matter. Each
// counter is a key holding its TAT in microseconds since the epoch, with
// an expiry at that TAT: an idle key vanishes when it is as good as
// fresh.
//
// In Redis, times are whole microseconds (exact in Lua's doubles for
// centuries): T is rounded to the nearest microsecond, at least 1, so a
// limit in Redis counts at most a million requests a second per key.
//
// Requests never hang on Redis: each call has RedisTimeout, and after a
// failure the node stops asking Redis, counting each limit with its
// fallback instead (locally with the same settings, or not at all). Every
// RedisBackoff it tries Redis again in the background, and once Redis
// answers, counting there resumes. The warning that Redis failed is
// logged at most once per RedisBackoff; its return once.

// RedisTimeout bounds each call to Redis on behalf of a request; past
// it, the request is counted with the policy's fallback.
const RedisTimeout = 50 * time.Millisecond

// RedisBackoff is how long a node counts with the fallback after Redis
// failed, before it tries Redis again.
const RedisBackoff = time.Second

// redisKeyPrefix begins every rate-limit key gatehouse writes.
const redisKeyPrefix = "gatehouse:ratelimit:"

// gcraScript is GCRA over KEYS, all or nothing.
// KEYS[i]: limit i's TAT, µs since the epoch.
// ARGV[2i-1], ARGV[2i]: limit i's T and τ, µs.
// Returns {admitted (1 or 0), d_1, ..., d_n}: d_i is TAT_i - now in µs,
// after the request if admitted, as it stands if not.
var gcraScript = redis.NewScript(`
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n = #KEYS
local tat = {}
local admitted = 1
for i = 1, n do
  local v = redis.call('GET', KEYS[i])
  local x = now
  if v then x = math.max(tonumber(v), now) end
  tat[i] = x
  if x - now > tonumber(ARGV[2*i]) then admitted = 0 end
end
local out = {admitted}
for i = 1, n do
  local x = tat[i]
  if admitted == 1 then
    x = x + tonumber(ARGV[2*i-1])
    redis.call('SET', KEYS[i], string.format('%d', x), 'PX', math.floor((x - now) / 1000) + 1)
  end
  out[i+1] = x - now
end
return out
`)

// giveBackScript undoes what gcraScript counted for a request a later
// step refused: each TAT goes back by its T; a TAT no longer ahead of now
// is as good as fresh, and goes. A key that expired meanwhile stays gone.
// KEYS[i]: limit i's TAT. ARGV[i]: limit i's T, µs.
var giveBackScript = redis.NewScript(`
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
for i = 1, #KEYS do
  local v = redis.call('GET', KEYS[i])
  if v then
    local x = tonumber(v) - tonumber(ARGV[i])
    if x > now then
      redis.call('SET', KEYS[i], string.format('%d', x), 'PX', math.floor((x - now) / 1000) + 1)
    else
      redis.call('DEL', KEYS[i])
    end
  end
end
return 0
`)

// LoadRedisScript connects client to Redis if it is not yet, and loads the
// rate-limit scripts there, so that requests can run them by their hash.
func LoadRedisScript(ctx context.Context, client redis.UniversalClient) error {
	if err := gcraScript.Load(ctx, client).Err(); err != nil {
		return err
	}
	return giveBackScript.Load(ctx, client).Err()
}

// maxGiveBacks bounds the give-backs one node has under way: past it, a
// refused request keeps its units in Redis rather than costing a
// goroutine (a flood of requests that later steps refuse, a slow Redis).
const maxGiveBacks = 64

// redisLimits decides a route's limits with store redis.
type redisLimits struct {
	client  redis.UniversalClient
	circuit *redisCircuit
	ctx     context.Context
	// idx are the indices of the Redis limits in the route's limits.
	idx []int
	// args are ARGV: each limit's T and τ in µs; giveBackArgs each T.
	args, giveBackArgs []any
	// interval and tolerance are T and τ as Redis counts them, ns.
	interval, tolerance []int64
	// byKey: all the limits have one By, so a request's keys can share a
	// Redis Cluster hash slot per client rather than per route.
	byKey bool
	route string
	// honoursDeadlines: the client stops waiting at the context's
	// deadline by itself.
	honoursDeadlines bool
}

// newRedisLimits compiles the limits with store redis among a route's
// limits.
func newRedisLimits(b *Build, limits []*limit) *redisLimits {
	rl := &redisLimits{client: b.Env.Redis, ctx: b.Env.Context, route: b.Route.ID, byKey: true,
		honoursDeadlines: honoursDeadlines(b.Env.Redis),
		circuit:          Get(b.Env.State, "rate-limit:redis-circuit", func() *redisCircuit { return newRedisCircuit(b.Env) })}
	by := ""
	for i, l := range limits {
		if !l.redis {
			continue
		}
		us := max(1, (l.interval+500)/1000)
		tol := maxTolerance / 1000
		if bursts := l.tolerance / l.interval; bursts <= tol/us {
			tol = us * bursts
		}
		rl.idx = append(rl.idx, i)
		rl.args = append(rl.args, us, tol)
		rl.giveBackArgs = append(rl.giveBackArgs, us)
		rl.interval = append(rl.interval, us*1000)
		rl.tolerance = append(rl.tolerance, tol*1000)
		if by == "" {
			by = l.by
		}
		rl.byKey = rl.byKey && l.by == by
	}
	return rl
}

// take decides r's Redis limits (the others in vs are decided already),
// falling back if Redis fails. It reports whether all admitted r, and the
// keys counted in Redis if they did (for giveBack; nil if Redis was not
// asked).
func (rl *redisLimits) take(r *Request, now int64, limits []*limit, vs []verdict) (bool, []string) {
	if rl.circuit.allow(now) {
		admitted, keys, err := rl.run(r, limits, vs)
		if err == nil {
			rl.circuit.succeeded()
			if !admitted {
				keys = nil
			}
			return admitted, keys
		}
		rl.circuit.failed(now, err)
	}
	for _, i := range rl.idx {
		l := limits[i]
		if l.local == nil {
			continue // fallback allow: not counted
		}
		if !l.takeLocal(r, now, &vs[i]) {
			return false, nil
		}
	}
	return true, nil
}

func (rl *redisLimits) run(r *Request, limits []*limit, vs []verdict) (bool, []string, error) {
	keys := make([]string, len(rl.idx))
	for j, i := range rl.idx {
		keys[j] = rl.key(r, limits[i])
	}
	res, err := rl.eval(keys)
	if err != nil {
		return false, nil, err
	}
	if len(res) != len(keys)+1 {
		return false, nil, errUnexpectedReply
	}
	admitted := res[0] == 1
	for j, i := range rl.idx {
		d := res[j+1] * 1000
		vs[i] = verdict{d: d, counted: true, admitted: admitted || d <= rl.tolerance[j],
			interval: rl.interval[j], tolerance: rl.tolerance[j]}
	}
	return admitted, keys, nil
}

// giveBack undoes in Redis what take counted under keys, in the
// background: the refusal that calls it is not held up by Redis. One
// round trip, bounded by RedisTimeout, and skipped while Redis is failing
// or maxGiveBacks are under way (the units then stay spent, as they would
// have before give-backs existed).
func (rl *redisLimits) giveBack(keys []string) {
	c := rl.circuit
	if c.openUntil.Load() != 0 {
		return
	}
	if c.giveBacks.Add(1) > maxGiveBacks {
		c.giveBacks.Add(-1)
		return
	}
	go func() {
		defer c.giveBacks.Add(-1)
		ctx, cancel := context.WithTimeout(rl.ctx, RedisTimeout)
		defer cancel()
		// A failure costs the client units it did not use; the circuit
		// is for the requests' own calls, so it is not tripped here.
		giveBackScript.Run(ctx, rl.client, keys, rl.giveBackArgs...)
	}()
}

// eval runs the script, giving up after RedisTimeout. A client that
// honours context deadlines (go-redis's ContextTimeoutEnabled) is called
// directly; any other would wait on a hung Redis for its own read timeout
// (3 s by default), so the call runs on its own goroutine, which is left
// to finish after the request has gone on with the fallback.
func (rl *redisLimits) eval(keys []string) ([]int64, error) {
	ctx, cancel := context.WithTimeout(rl.ctx, RedisTimeout)
	defer cancel()
	if rl.honoursDeadlines {
		return gcraScript.Run(ctx, rl.client, keys, rl.args...).Int64Slice()
	}
	done := make(chan redisReply, 1)
	go func() {
		res, err := gcraScript.Run(ctx, rl.client, keys, rl.args...).Int64Slice()
		done <- redisReply{res, err}
	}()
	select {
	case r := <-done:
		return r.res, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type redisReply struct {
	res []int64
	err error
}

// honoursDeadlines reports whether client bounds its socket I/O by the
// context's deadline.
func honoursDeadlines(client redis.UniversalClient) bool {
	switch c := client.(type) {
	case *redis.Client:
		return c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		return c.Options().ContextTimeoutEnabled
	}
	return false
}

var errUnexpectedReply = errors.New("unexpected reply from the rate-limit script")

// key is limit l's Redis key for r: the prefix, a hash tag (the route and,
// when the route's Redis limits share one By, the client key, so that one
// script's keys share a Redis Cluster slot), the policy's state key and
// the client key.
func (rl *redisLimits) key(r *Request, l *limit) string {
	client := ""
	switch {
	case l.by == gatehouse.RateByRoute:
	case l.by == gatehouse.RateByConsumer && r.Consumer != nil:
		client = "consumer=" + r.Consumer.ID
	default:
		client = "ip=" + r.Client.String()
	}
	tag := rl.route
	if rl.byKey {
		tag += "|" + client
	}
	return redisKeyPrefix + "{" + tag + "}:" + l.redisKey + "|" + client
}

// redisCircuit stops a node from asking Redis for RedisBackoff after a
// failure. One serves every Redis limit of the node.
type redisCircuit struct {
	// openUntil is when Redis may be tried again (ns since the epoch); 0
	// while Redis answers.
	openUntil atomic.Int64
	// warned is when the last warning was logged.
	warned atomic.Int64
	// probing: a trial is under way.
	probing atomic.Bool
	// giveBacks counts the give-backs under way.
	giveBacks atomic.Int32

	client redis.UniversalClient
	ctx    context.Context
	now    func() time.Time
	log    *slog.Logger
}

// redisProbeTimeout bounds a trial of a Redis that failed. No request
// waits on it.
const redisProbeTimeout = time.Second

func newRedisCircuit(env *Env) *redisCircuit {
	c := &redisCircuit{client: env.Redis, ctx: env.Context, now: env.Now, log: env.Log}
	// The node connects and loads the script at once, so that the first
	// requests do not pay for a dial and a NOSCRIPT round trip within
	// RedisTimeout. A failure here is for requests to find.
	go func() {
		ctx, cancel := context.WithTimeout(c.ctx, redisProbeTimeout)
		defer cancel()
		LoadRedisScript(ctx, c.client)
	}()
	return c
}

// allow reports whether to ask Redis at now. Once the back-off is over,
// the first request to come starts a trial in the background (connecting
// and loading the script, so that a restarted Redis has it) and, like the
// others, falls back until the trial succeeds.
func (c *redisCircuit) allow(now int64) bool {
	until := c.openUntil.Load()
	if until == 0 {
		return true
	}
	if now >= until && c.openUntil.CompareAndSwap(until, now+int64(RedisBackoff)) && c.probing.CompareAndSwap(false, true) {
		go c.probe()
	}
	return false
}

func (c *redisCircuit) probe() {
	defer c.probing.Store(false)
	ctx, cancel := context.WithTimeout(c.ctx, redisProbeTimeout)
	defer cancel()
	if err := LoadRedisScript(ctx, c.client); err != nil {
		c.failed(c.now().UnixNano(), err)
		return
	}
	c.succeeded()
}

func (c *redisCircuit) failed(now int64, err error) {
	c.openUntil.Store(now + int64(RedisBackoff))
	last := c.warned.Load()
	if (last == 0 || now-last >= int64(RedisBackoff)) && c.warned.CompareAndSwap(last, now) {
		c.log.Warn("rate limits: Redis failed; counting with each policy's fallback",
			"error", err, "retry_in", RedisBackoff.String())
	}
}

func (c *redisCircuit) succeeded() {
	if c.openUntil.Load() != 0 && c.openUntil.Swap(0) != 0 {
		c.log.Info("rate limits: Redis answers again; counting there")
	}
}
