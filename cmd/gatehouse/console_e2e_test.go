package main

// The web console in a real headless Chromium (Debian's chromium package,
// driven with chromedp): one browser, a tab per session, against a real
// gatehouse (admin API and proxy on SQLite) and a real upstream. Any
// console error, uncaught exception or failed load of a console file on
// any page fails the test.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/testupstream"
)

// chromiumPath is the browser the console's tests drive: Debian's, never
// one downloaded. Outside CI a missing browser skips them, loudly.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("GATEHOUSE_CHROMIUM"), "/usr/bin/chromium"} {
		if p == "" {
			continue
		}
		if _, err := exec.LookPath(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed; CI must install it (.ci/run: apt-get install chromium)")
	}
	t.Skip("!!! SKIPPED: the console's browser tests need chromium (apt-get install chromium); they did NOT run")
	return ""
}

// tab is one browser tab: one console session (sessionStorage is per tab),
// with the errors seen on its pages.
type tab struct {
	t    *testing.T
	name string
	ctx  context.Context
	mu   sync.Mutex
	errs []string
}

func newTab(t *testing.T, browser context.Context, name string) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	tb := &tab{t: t, name: name, ctx: ctx}
	err := chromedp.Listen(ctx, func(ev any) {
		var msg string
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			msg = "uncaught exception: " + ev.ExceptionDetails.Text
			if ev.ExceptionDetails.Exception != nil {
				msg += " " + ev.ExceptionDetails.Exception.Description
			}
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert || ev.Type == runtime.ConsoleAPICalledTypeWarning {
				var args []string
				for _, a := range ev.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				msg = fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " "))
			}
		case *cdplog.EventEntryAdded:
			// The API's refusals are the console's to show (the test
			// provokes 412, 422 and 403); any other failed load, a
			// console file above all, and any CSP violation is an error.
			e := ev.Entry
			if e.Level == cdplog.EntryLevelError && !(e.Source == cdplog.EntrySourceNetwork && strings.Contains(e.URL, "/admin/v1/")) {
				msg = fmt.Sprintf("log %s: %s %s", e.Source, e.Text, e.URL)
			}
		}
		if msg != "" {
			tb.mu.Lock()
			tb.errs = append(tb.errs, msg)
			tb.mu.Unlock()
		}
	})
	if err != nil {
		t.Fatalf("open the %s tab: %v", name, err)
	}
	t.Cleanup(func() {
		tb.mu.Lock()
		defer tb.mu.Unlock()
		for _, e := range tb.errs {
			t.Errorf("%s tab: %s", name, e)
		}
	})
	return tb
}

// run performs actions within a bound, failing the test with what was
// being done.
func (tb *tab) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tb.fail(what, err)
	}
}

// eval evaluates a JavaScript expression in the tab's page.
func eval[T any](tb *tab, what, expr string, opts ...chromedp.EvaluateOption) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, opts...))
	if err != nil {
		tb.fail(what, err)
	}
	return v
}

func (tb *tab) fail(what string, err error) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
	defer cancel()
	body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
	tb.t.Fatalf("%s tab: %s: %v\npage: %s", tb.name, what, err, body)
}

// waitText waits until the element sel holds text.
func waitText(sel, text string) chromedp.Action[chromedp.Void] {
	s, _ := json.Marshal(sel)
	x, _ := json.Marshal(text)
	return chromedp.Poll[chromedp.Void](fmt.Sprintf(`(() => { const e = document.querySelector(%s); return !!e && e.textContent.includes(%s); })()`, s, x),
		chromedp.WithPollingTimeout(15*time.Second))
}

func visible(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.WaitVisible(chromedp.CSS(sel))
}

// absent is true when no element matches sel.
func (tb *tab) absent(sel string) bool {
	tb.t.Helper()
	s, _ := json.Marshal(sel)
	return eval[int](tb, "count "+sel, fmt.Sprintf(`document.querySelectorAll(%s).length`, s)) == 0
}

func (tb *tab) go_(hash string, waitFor string) {
	tb.t.Helper()
	tb.run("go to "+hash, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`location.hash = %q`, hash)), visible(waitFor))
}

// signIn signs the tab in with secret, by the keyboard: the token field
// has the focus, and Enter submits.
func (tb *tab) signIn(base, secret string) {
	tb.t.Helper()
	tb.run("sign in",
		chromedp.Navigate(base),
		visible("#token"),
		chromedp.SendKeys(chromedp.CSS("#token"), secret+kb.Enter),
		visible("#nav"),
		waitText("main h1", "Overview"))
}

// fill sets form fields by id (f-<field>) to values.
func fill(kv ...string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		for i := 0; i+1 < len(kv); i += 2 {
			if _, err := chromedp.SetValue(chromedp.CSS("#f-"+kv[i]), kv[i+1])(ctx, t); err != nil {
				return chromedp.Void{}, err
			}
		}
		return chromedp.Void{}, nil
	}
}

func click(sel string) chromedp.Action[chromedp.Void] { return chromedp.Click(chromedp.CSS(sel)) }

// waitJS waits until the expression is true.
func waitJS(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(15*time.Second))
}

// codeCount is an expression: the count the live table id shows for key
// (a status code or class), or undefined.
func codeCount(id, key string) string {
	return fmt.Sprintf(`document.querySelector('#%s tr[data-key="%s"] td:nth-child(2)')?.textContent`, id, key)
}

// statsPolls is an expression: how many GET /admin/v1/stats the page
// started since window.pollsFrom and has had answered.
const statsPolls = `performance.getEntriesByType('resource').filter(e => e.name.includes('/admin/v1/stats') && e.startTime >= window.pollsFrom).length`

// steadyTraffic sends GET path through the proxy every 20 ms until the
// function it returns is called, which fails the test if an answer was
// not 200.
func steadyTraffic(t *testing.T, p *proc, path string) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				done <- nil
				return
			case <-tick.C:
			}
			r, err := p.send("GET", "http://"+p.proxyAddr+path, "", "")
			if err == nil && r.status != http.StatusOK {
				err = fmt.Errorf("got %d %s; want 200", r.status, r.body)
			}
			if err != nil {
				done <- fmt.Errorf("GET %s: %w", path, err)
				return
			}
		}
	}()
	var once sync.Once
	stop = func() {
		t.Helper()
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

const submit = `form.resource button[type=submit]`

func TestConsoleInChromiumEditsDeploysAndExplainsTheAPIsRefusals(t *testing.T) {
	chromium := chromiumPath(t)
	up := testupstream.Start(t)
	const token = "console-e2e-admin-token-0123456789abcdef"
	// Rates are measured every --stats-interval: a short one lets the live
	// panels see traffic start within the test's seconds.
	p := launch(t, t.TempDir(), []string{"--stats-interval", "1s"}, "GATEHOUSE_ADMIN_TOKEN="+token)
	base := "http://" + p.adminAddr + "/console/"
	// The response audit on the route, so that its page has conformance
	// findings to show (an upstream 405 without Allow is one).
	wantStatus(t, "create an http-audit policy", p.do("POST", "/admin/v1/policies", token,
		`{"id":"audit","name":"audit","type":"http-audit","config":{"responses":"report"}}`), http.StatusCreated)

	ro := p.do("POST", "/admin/v1/tokens", token, `{"name":"viewer","role":"read-only"}`)
	wantStatus(t, "create a read-only token", ro, http.StatusCreated)
	var roTok struct{ Token string }
	json.Unmarshal(ro.body, &roTok)

	alloc, cancel := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.WindowSize(1280, 800), chromedp.NoSandbox,
		chromedp.Flag("disable-dev-shm-usage", true))...)
	t.Cleanup(cancel)
	browser, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(cancelBrowser)
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("start chromium: %v", err)
	}

	a := newTab(t, browser, "admin")
	a.signIn(base, token)
	if stored := eval[string](a, "read the stored token", `sessionStorage.getItem('gatehouse.console.token')`); stored != token {
		t.Fatalf("sessionStorage holds %q; want the token", stored)
	}
	if href := eval[string](a, "read the URL", `location.href`); strings.Contains(href, token) {
		t.Fatalf("the URL %s holds the token", href)
	}

	t.Log("create a service and a route")
	a.run("open the services", click(`#nav a[href="#/services"]`), waitText("main h1", "Services"),
		click(`a[href="#/services/+new"]`), visible("#f-name"))
	a.run("create a service", fill("id", "echo", "name", "echo", "url", up.URL), click(submit),
		waitText("main", "Service created."), waitText("main h1", "echo"))
	a.go_("#/routes/+new", "#f-service_id")
	// Stripping /echo lets the traffic below reach the upstream's
	// /status/{code} and an unknown /fault/ (404) through the route.
	a.run("create a route", fill("id", "echo-route", "name", "echo-route", "service_id", "echo", "paths", "/echo/*", "policies", "audit"),
		click("#f-strip_path"), click(submit), waitText("main", "Route created."))

	t.Log("a policy's configuration errors are shown at the configuration, beside its type's fields")
	a.go_("#/policies/+new", "#f-config")
	a.run("create a policy with an unknown field", fill("name", "limit", "type", "rate-limit", "config", `{"bogus": 1}`),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('#f-type').dispatchEvent(new Event('change'))`),
		waitText("#policy-schema", "rate-limit configuration"),
		click(submit), waitText("main", "The server could not take this change (400)"),
		waitText("#err-config", "config.bogus"))

	t.Log("a consumer's key and a token's secret are shown once, at creation")
	a.go_("#/consumers/+new", "#f-name")
	a.run("create a consumer", fill("id", "alice", "name", "alice"), click(submit), waitText("main", "Consumer created."))
	a.run("create a key", visible("#creds-h"), click(`section form.resource button[type=submit]`),
		waitText(`[data-secret="key"]`, "ghk_"))
	a.go_("#/tokens/+new", "#f-role")
	a.run("create a token", fill("name", "ci", "role", "read-only"), click(submit), waitText(`[data-secret="token"]`, "gha_"))
	a.go_("#/tokens", "main table")
	if !a.absent(`[data-secret]`) {
		t.Errorf("the tokens page shows a secret again")
	}

	t.Log("a spec's document is sent as itself")
	a.go_("#/specs/+new", "#f-document")
	a.run("create a spec", fill("name", "pets", "media", "application/json",
		"document", `{"openapi":"3.1.0","info":{"title":"Pets","version":"1"},"paths":{"/pets":{"get":{"responses":{"200":{"description":"ok"}}}}}}`),
		click(submit), waitText("main", "Spec created."), waitText("main h1", "Spec: pets"))
	a.go_("#/specs", "main table")
	a.run("the list shows it", waitText("main table", "Pets"))

	t.Log("a 422 is shown beside its field")
	a.go_("#/services/echo", "#f-url")
	a.run("save an unsupported scheme", fill("url", "ftp://example.com"), click(submit),
		waitText("main", "The server refused this change (422)"), visible("#err-url"),
		waitText("#err-url", `has scheme "ftp"`),
		visible(`.field.invalid[data-field="url"]`))

	t.Log("a YAML spec opens, its document shown as itself")
	yamlSpec := p.do("POST", "/admin/v1/specs?name=evil", token,
		"openapi: 3.1.0\ninfo:\n  title: Evil\n  version: '1'\npaths: {}\n", "Content-Type", "application/yaml")
	wantStatus(t, "create a YAML spec", yamlSpec, http.StatusCreated)
	var yamlID struct{ ID string }
	json.Unmarshal(yamlSpec.body, &yamlID)
	a.go_("#/specs/"+yamlID.ID, "#f-document")
	a.run("it shows the YAML", waitText("main h1", "Spec: evil"),
		waitJS(`document.querySelector('#f-document').value.startsWith('openapi: 3.1.0') && document.querySelector('#f-media').value === 'application/yaml'`))

	t.Log("the policy editor offers every policy type, and an unchanged type is kept")
	a.go_("#/policies/+new", "#f-type")
	offered := eval[[]string](a, "read the types", `[...document.querySelectorAll('#f-type option')].map(o => o.value).filter(Boolean)`)
	for name := range gatehouse.PolicyTypes {
		if !slices.Contains(offered, name) {
			t.Errorf("the policy editor does not offer the type %q (it offers %v)", name, offered)
		}
	}
	wantStatus(t, "create a traffic split", p.do("POST", "/admin/v1/policies", token,
		`{"id":"canary","name":"canary","type":"traffic-split","config":{"services":[{"service_id":"echo","percent":5}]}}`), http.StatusCreated)
	a.go_("#/policies/canary", "#f-type")
	a.run("rename it, its type untouched", waitText("main h1", "Policy: canary"), fill("name", "canary-5"), click(submit),
		waitText("main", "Policy saved."), waitText("main h1", "Policy: canary-5"))
	// A value its options lack (a type newer than the list) stays selected,
	// so leaving the select alone sends nothing rather than null.
	if kept := eval[string](a, "a select with a value it was not told of", `(async () => {
		const src = document.querySelector('script[type=module]').src;
		const forms = await import(new URL('forms.js', src).href);
		const f = forms.resourceForm({ fields: [{ name: 'kind', type: 'select', options: ['auth'] }],
			resource: { id: 'x', kind: 'mirror' }, path: '/x', itemPath: () => '/x/x' });
		return f.querySelector('select').value;
	})()`, chromedp.EvalAwaitPromise); kept != "mirror" {
		t.Errorf("a select whose value its options lack reads %q; want mirror", kept)
	}

	t.Log("a resource with the id new opens as itself; a grpc health check says so")
	wantStatus(t, "create the service new", p.do("POST", "/admin/v1/services", token,
		`{"id":"new","name":"new","url":"http://127.0.0.1:9","protocol":"http2","health_check":{"type":"grpc","grpc_service":"pets.v1.Pets","interval_ms":5000,"timeout_ms":1000}}`), http.StatusCreated)
	a.go_("#/services", `a[href="#/services/new"]`)
	a.run("the list shows its check", waitText("main table", "active grpc check of service pets.v1.Pets every 5000 ms"))
	a.run("open it", click(`a[href="#/services/new"]`), waitText("main h1", "Service: new"), visible("#f-retries"))

	t.Log("a delete refused with 412 says someone changed it, not what the last save sent")
	wantStatus(t, "change it from elsewhere", p.do("PATCH", "/admin/v1/services/new", token, `{"retries":3}`,
		"Content-Type", "application/merge-patch+json"), http.StatusOK)
	a.run("a save meets the 412", fill("connect_timeout_ms", "1500"), click(submit),
		waitText("main", "Your change, not applied: connect_timeout_ms → 1500"))
	a.run("delete meets the 412", click("button.danger"), waitText("button.danger", "Confirm delete"), click("button.danger"),
		waitText("main", "It was not deleted"), waitText("table.conflict", "/retries"))
	if text := eval[string](a, "read the page", `document.querySelector('main').textContent`); strings.Contains(text, "Your change, not applied") {
		t.Errorf("a delete's 412 shows the last save's patch as the change not applied")
	}
	a.run("reload it", click(`.notice.warn button`), waitJS(`document.querySelector('#f-retries')?.value === '3'`))

	// Its target refuses every probe: unhealthy from the first deploy on.
	wantStatus(t, "create a service whose upstream is dead", p.do("POST", "/admin/v1/services", token,
		`{"id":"dead","name":"dead","url":"http://127.0.0.1:9","health_check":{"path":"/","interval_ms":100,"timeout_ms":90,"unhealthy_threshold":1}}`), http.StatusCreated)

	t.Log("deploy and watch the progress reach succeeded")
	a.go_("#/deployments", "#deploy")
	a.run("deploy", click("#deploy"), waitText("#deployment-state", "succeeded"), waitText("main", "Progress per node"))
	proxied := func(path string, status int) {
		t.Helper()
		wantStatus(t, "GET "+path+" through the proxy", p.do("GET", "http://"+p.proxyAddr+path, "", ""), status)
	}
	proxied("/echo/hello", http.StatusOK)

	t.Log("send traffic and see the route's rate, chart and status breakdown change, without reloading")
	a.go_("#/routes/echo-route", "#route-chart")
	a.run("the route's first request is counted", waitJS(codeCount("route-codes", "200")+` === '1'`))
	// A reload would lose the mark, and a refresh that re-rendered the
	// form would lose the focus.
	eval[chromedp.Void](a, "mark the page and focus a field", `window.liveMark = 1; document.querySelector('#f-name').focus()`)
	chartBefore := eval[string](a, "read the chart", `document.querySelector('#route-chart').getAttribute('aria-label')`)
	stopTraffic := steadyTraffic(t, p, "/echo/hello")
	for range 3 {
		proxied("/echo/status/500", http.StatusInternalServerError)
	}
	for range 2 {
		proxied("/echo/fault/nope", http.StatusNotFound)
	}
	proxied("/echo/status/405", http.StatusMethodNotAllowed)
	a.run("the breakdown counts each status",
		waitJS(codeCount("route-codes", "500")+` === '3' && `+codeCount("route-codes", "404")+` === '2' && `+
			codeCount("route-codes", "405")+` === '1' && Number(`+codeCount("route-codes", "200")+`) > 1`))
	// Above the 1 req/s the one request before could show.
	a.run("the rate rises and the chart draws it",
		waitJS(`parseFloat(document.querySelector('#route-rate')?.textContent) > 2 && `+
			`/L/.test(document.querySelector('#route-chart .chart-line')?.getAttribute('d'))`))
	if after := eval[string](a, "read the chart", `document.querySelector('#route-chart').getAttribute('aria-label')`); after == chartBefore || !strings.Contains(after, "now ") {
		t.Errorf("the chart's text stayed %q", after)
	}
	a.run("the audit's finding shows", waitText("#route-findings-table", "allow-missing"))
	a.run("the latency shows", waitJS(`/ms|s$/.test(document.querySelector('#route-latency td')?.textContent)`))
	if !eval[bool](a, "check the page", `window.liveMark === 1 && document.activeElement.id === 'f-name'`) {
		t.Errorf("the route page reloaded, or its refresh moved the focus from the field being edited")
	}

	// Each page is waited for by what only it has: the page before has
	// tables too.
	a.go_("#/routes", `[data-live="rate"]`)
	a.run("the routes list shows the route's live rate",
		waitJS(`parseFloat(document.querySelector('[data-route="echo-route"][data-live="rate"]')?.textContent) > 0`))
	if shot := os.Getenv("GATEHOUSE_SCREENSHOT"); shot != "" {
		png, err := chromedp.Run(a.ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatalf("screenshot the routes page: %v", err)
		}
		if err := os.WriteFile(shot, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	a.go_("#/overview", "#live-rate")
	a.run("the overview's totals show the traffic",
		waitJS(codeCount("total-classes", "5xx")+` === '3' && parseFloat(document.querySelector('#total-rate')?.textContent) > 0`),
		waitText("#live-nodes", "Figures from 1 of 1 nodes"))
	stopTraffic()
	proxied("/echo/status/503", http.StatusServiceUnavailable)
	a.run("and change with more", waitJS(codeCount("total-classes", "5xx")+` === '4'`))
	if !eval[bool](a, "check the page", `window.liveMark === 1`) {
		t.Errorf("the console reloaded a page to show live figures")
	}

	t.Log("the figures are asked for only while a page shows them in a visible tab")
	// The browser's own record of the page's requests counts the polls
	// started from now on (one under way may finish).
	from := `performance.clearResourceTimings(); window.pollsFrom = performance.now()`
	quiet := func(what string) {
		t.Helper()
		eval[chromedp.Void](a, "start counting", from)
		time.Sleep(3 * time.Second) // half again the console's poll (2 s)
		if n := eval[int](a, "count the polls", statsPolls); n != 0 {
			t.Errorf("%s: the console asked GET /stats %d times", what, n)
		}
	}
	eval[chromedp.Void](a, "hide the tab", `Object.defineProperty(document, 'hidden', { configurable: true, get: () => true });
		document.dispatchEvent(new Event('visibilitychange'))`)
	quiet("on the overview in a hidden tab")
	eval[chromedp.Void](a, "show the tab", from+`; delete document.hidden; document.dispatchEvent(new Event('visibilitychange'))`)
	a.run("shown again, it asks at once, not a poll later", chromedp.Poll[chromedp.Void](statsPolls+` > 0`, chromedp.WithPollingTimeout(1500*time.Millisecond)))
	// The services page polls too, for its targets' health.
	a.go_("#/services", `a[href="#/services/echo"]`)
	a.run("the services page shows the dead target unhealthy, in words", waitText(`[data-health="dead"][data-target="0"]`, "unhealthy: connection refused"))
	a.go_("#/consumers", `a[href="#/consumers/alice"]`)
	quiet("on the consumers page")

	t.Log("a 412 provoked from a second session is explained")
	b := newTab(t, browser, "second")
	b.signIn(base, token)
	a.go_("#/services/echo", "#f-retries")
	a.run("a service's page shows its target's health", waitText("#service-health td.health-healthy", "healthy"))
	b.go_("#/services/echo", "#f-retries")
	b.run("the second session changes the retries", fill("retries", "2"), click(submit), waitText("main", "Service saved."))
	a.run("the first session saves over it", fill("connect_timeout_ms", "1500"), click(submit),
		waitText("main", "Someone else changed this (412 Precondition Failed)"),
		waitText("table.conflict", "/retries"), waitText("main", "Your change, not applied: connect_timeout_ms → 1500"))
	a.run("load the current version", click(`.notice.warn button`),
		chromedp.Poll[chromedp.Void](`document.querySelector('#f-retries')?.value === '2' && !document.querySelector('table.conflict')`,
			chromedp.WithPollingTimeout(15*time.Second)))

	t.Log("deploy the change, then roll back to revision 1")
	a.go_("#/deployments", "#deploy")
	a.run("deploy revision 2", click("#deploy"), waitText("#deployment-state", "of revision 2: succeeded"))
	a.go_("#/deployments", "#rollback-to")
	a.run("roll back", chromedp.SetValue(chromedp.CSS("#rollback-to"), "1"), click("#rollback"),
		waitText("#deployment-state", "rollback of revision 1: succeeded"))
	a.go_("#/overview", "#active-revision")
	a.run("the overview shows it", waitText("#active-revision", "1"), waitText("main", "Last deployments"))

	t.Log("a 409 and a 410 are explained in words")
	a.go_("#/services/echo", "button.danger")
	a.run("delete a service a route uses", click("button.danger"), waitText("button.danger", "Confirm delete"),
		click("button.danger"), waitText("main", "Conflict: the change clashes with what exists now"))
	wantStatus(t, "create a service to delete", p.do("POST", "/admin/v1/services", token, `{"id":"gone","name":"gone","url":"http://127.0.0.1:9"}`), http.StatusCreated)
	wantStatus(t, "delete it", p.do("DELETE", "/admin/v1/services/gone", token, ""), http.StatusNoContent)
	a.go_("#/services/gone", ".notice.error")
	a.run("open the deleted service", waitText("main", "410"), waitText("main", "Gone: this was deleted"))

	t.Log("the revisions page shows the difference between two")
	a.go_("#/revisions?from=1&to=2", "#diff table")
	a.run("the diff shows the change", waitText("#diff", "update"), waitText("#diff", "/retries"))
	a.go_("#/revisions?from=abc&to=2", "#diff .notice.error")
	a.run("a bad revision is the API's own 400", waitText("#diff", "400"), waitText("#diff", "query.diff_from"))

	t.Log("a read-only token cannot edit")
	c := newTab(t, browser, "read-only")
	c.signIn(base, roTok.Token)
	c.go_("#/services", "main table")
	if !c.absent(`a[href="#/services/+new"]`) {
		t.Errorf("read-only: the services page offers New service")
	}
	c.go_("#/services/echo", "#f-name")
	if !c.absent(submit) || !c.absent("button.danger") {
		t.Errorf("read-only: the service page offers Save or Delete")
	}
	if !eval[bool](c, "read the field", `document.querySelector('#f-name').disabled`) {
		t.Errorf("read-only: the name field is editable")
	}
	c.go_("#/deployments", "main table")
	if !c.absent("#deploy") {
		t.Errorf("read-only: the deployments page offers Deploy")
	}
	// A tampered client that shows the controls anyway meets the API's
	// 403, which the console shows.
	eval[chromedp.Void](c, "force the controls", `(async () => {
		const src = document.querySelector('script[type=module]').src;
		const api = await import(new URL('api.js', src).href);
		api.session.writable = true;
		api.session.me.role = 'admin';
		location.hash = '#/services/echo?forced';
	})()`, chromedp.EvalAwaitPromise)
	c.run("save with the forced controls", visible(submit),
		fill("retries", "5"), click(submit), waitText("main", "403"), waitText("main", "read-only"))

	t.Log("a token scoped to a consumer starts at its consumer")
	scoped := p.do("POST", "/admin/v1/tokens", token, `{"name":"alice-self","consumer_id":"alice"}`)
	wantStatus(t, "create a token scoped to alice", scoped, http.StatusCreated)
	var scopedTok struct{ Token string }
	json.Unmarshal(scoped.body, &scopedTok)
	d := newTab(t, browser, "scoped")
	d.run("sign in", chromedp.Navigate(base), visible("#token"),
		chromedp.SendKeys(chromedp.CSS("#token"), scopedTok.Token+kb.Enter),
		waitText("main h1", "Consumer: alice"), waitText("#who", "consumer alice"))

	for _, secret := range []string{token, roTok.Token, scopedTok.Token} {
		if strings.Contains(p.stderr.String(), secret) {
			t.Errorf("the server's log holds a token the console sent")
		}
	}

	t.Log("readable on a phone")
	a.run("narrow the window", chromedp.EmulateViewport(390, 844))
	for _, page := range []struct{ hash, ready string }{
		{"#/routes", `[data-live="rate"]`},
		{"#/routes/echo-route", `#route-codes tr`},
		{"#/overview", `#total-classes tr`},
	} {
		a.go_(page.hash, "main h1")
		// With its live figures drawn: a table that grows must stay in its box.
		a.run("wait for the figures of "+page.hash, waitJS(fmt.Sprintf(`!!document.querySelector(%q) && !/…/.test(document.querySelector('main').textContent)`, page.ready)))
		if eval[bool](a, "measure", `document.documentElement.scrollWidth > window.innerWidth`) {
			t.Errorf("at 390x844 the page %s is wider than the screen", page.hash)
		}
	}
	checkScopedTokenNavigation(t, d)
}

// checkScopedTokenNavigation: the tab d, signed in with a token scoped to
// consumer alice, shows in its navigation only the page that token can
// use, and a deep link to another page says why it cannot, in place of
// the API's 403.
func checkScopedTokenNavigation(t *testing.T, d *tab) {
	t.Log("a scoped token sees only the pages it can use")
	links := eval[[]string](d, "read the navigation",
		`[...document.querySelectorAll('#nav a')].filter(a => !a.hidden).map(a => a.getAttribute('href'))`)
	if len(links) != 1 || links[0] != "#/consumers/alice" {
		t.Errorf("scoped token's navigation %q; want only #/consumers/alice", links)
	}
	d.go_("#/routes", "main .notice.error")
	d.run("a deep link to routes says why", waitText("main h1", "Routes"), waitText("main", "limited to consumer alice"))
	d.go_("#/consumers/bob", "main .notice.error")
	d.run("a deep link to another consumer says why", waitText("main", "another consumer"))
}
