package gatehouse_test

import (
	"testing"

	"github.com/gatehouse/gatehouse"
)

func TestTransformPolicyCheck(t *testing.T) {
	tr := func(cfg string) string { return `{"name":"p","type":"transform","config":` + cfg + `}` }
	hdr := func(op string) string { return tr(`{"request":{"headers":` + op + `}}`) }
	runChecks(t, gatehouse.KindPolicy, []checkCase{
		{desc: "nothing to change", body: tr(`{}`)},
		{desc: "every operation with every variable", body: tr(`{"request":{"path":"/v2/accounts/{id}",
			"headers":{"remove":["Cookie"],"rename":{"X-Old":"X-New"},"set":{"X-Tenant":"t-$(consumer.id)"},"add":{"X-Trace":"$(request.id) $(route.id) $(client.address) $(consumer.name)"}},
			"query":{"remove":["debug"],"rename":{"q":"search"},"set":{"v":"2"},"add":{"who":"$(consumer.name)"}}},
			"response":{"headers":{"remove":["X-Powered-By"],"set":{"Cache-Control":"no-store"}}}}`)},
		{desc: "a literal dollar, and ${{ env }} is not a variable", body: hdr(`{"set":{"X-Price":"$$5 $x ${{ HOME }}"}}`)},
		{desc: "an unknown variable", body: hdr(`{"set":{"X-A":"$(consumer.email)"}}`), unprocessable: []string{"config.request.headers.set.X-A"}},
		{desc: "an unclosed variable", body: hdr(`{"add":{"X-A":"$(consumer.id"}}`), unprocessable: []string{"config.request.headers.add.X-A"}},
		{desc: "an unknown variable in a query value", body: tr(`{"request":{"query":{"set":{"a":"$(env.HOME)"}}}}`),
			unprocessable: []string{"config.request.query.set.a"}},
		{desc: "forging the consumer's identity", body: hdr(`{"set":{"X-Consumer-Id":"admin"},"add":{"x-consumer-groups":"admins"}}`),
			unprocessable: []string{"config.request.headers.set.X-Consumer-Id", "config.request.headers.add.x-consumer-groups"}},
		{desc: "renaming onto or away from identity fields", body: hdr(`{"rename":{"X-Mine":"X-Consumer-Name","X-Forwarded-For":"X-Orig"}}`),
			unprocessable: []string{"config.request.headers.rename.X-Forwarded-For", "config.request.headers.rename.X-Mine"}},
		{desc: "removing the client's forwarding fields and request id", body: hdr(`{"remove":["Forwarded","X-Forwarded-Proto","Via","X-Request-Id","X-Real-IP"]}`),
			unprocessable: []string{"config.request.headers.remove[0]", "config.request.headers.remove[1]", "config.request.headers.remove[2]",
				"config.request.headers.remove[3]", "config.request.headers.remove[4]"}},
		{desc: "hop-by-hop and framing fields", body: hdr(`{"set":{"Connection":"close","Transfer-Encoding":"chunked","Host":"evil","Content-Length":"0",
			"Upgrade":"h2c","TE":"trailers","Keep-Alive":"1","Proxy-Authorization":"x"}}`),
			unprocessable: []string{"config.request.headers.set.Connection", "config.request.headers.set.Content-Length", "config.request.headers.set.Host",
				"config.request.headers.set.Keep-Alive", "config.request.headers.set.Proxy-Authorization", "config.request.headers.set.TE",
				"config.request.headers.set.Transfer-Encoding", "config.request.headers.set.Upgrade"}},
		{desc: "undoing a cors policy", body: tr(`{"response":{"headers":{"set":{"Access-Control-Allow-Origin":"*"},"remove":["access-control-allow-credentials"]}}}`),
			unprocessable: []string{"config.response.headers.remove[0]", "config.response.headers.set.Access-Control-Allow-Origin"}},
		{desc: "framing a response", body: tr(`{"response":{"headers":{"remove":["Content-Length"],"set":{"Transfer-Encoding":"identity"}}}}`),
			unprocessable: []string{"config.response.headers.remove[0]", "config.response.headers.set.Transfer-Encoding"}},
		{desc: "a header split in a value", body: hdr(`{"set":{"X-A":"a\r\nX-Consumer-Id: admin"},"add":{"X-B":"a\u0000b"}}`),
			invalid: []string{"config.request.headers.set.X-A", "config.request.headers.add.X-B"}},
		{desc: "names that are not header names", body: hdr(`{"remove":["X A"],"set":{"a:b":"1"},"rename":{"X-Ok":""}}`),
			invalid: []string{"config.request.headers.remove[0]", "config.request.headers.rename.X-Ok", "config.request.headers.set.a:b"}},
		{desc: "a header repeated in another case", body: hdr(`{"set":{"X-A":"1","x-a":"2"}}`), invalid: []string{"config.request.headers.set.x-a"}},
		{desc: "query names with separators", body: tr(`{"request":{"query":{"remove":["a&b"],"set":{"c=d":"1"}}}}`),
			invalid: []string{"config.request.query.remove[0]", "config.request.query.set.c=d"}},
		{desc: "a path without a leading slash", body: tr(`{"request":{"path":"v2/{id}"}}`), invalid: []string{"config.request.path"}},
		{desc: "a path with a wildcard", body: tr(`{"request":{"path":"/v2/*"}}`), invalid: []string{"config.request.path"}},
		{desc: "a path with a dot segment", body: tr(`{"request":{"path":"/v2/../admin/{id}"}}`), invalid: []string{"config.request.path"}},
		{desc: "a path with a parameter inside a segment", body: tr(`{"request":{"path":"/v2/user-{id}"}}`), invalid: []string{"config.request.path"}},
		{desc: "a path with a query", body: tr(`{"request":{"path":"/v2?x=1"}}`), invalid: []string{"config.request.path"}},
		{desc: "too many removals", body: hdr(`{"remove":` + jsonList(gatehouse.MaxTransformEntries+1, `"X-%d"`) + `}`), invalid: []string{"config.request.headers.remove"}},
		{desc: "an unknown field", body: tr(`{"request":{"body":{}}}`), invalid: []string{"config.request.body"}},
	})
}
