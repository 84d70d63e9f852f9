package policy

import (
	"net/netip"
	"testing"
)

func TestIPRestriction(t *testing.T) {
	for _, tc := range []struct {
		desc     string
		policies []string
		client   string
		allowed  bool
	}{
		{"denied prefix", []string{`{"deny":["10.0.0.0/8"]}`}, "10.1.2.3", false},
		{"outside the denied prefix", []string{`{"deny":["10.0.0.0/8"]}`}, "192.0.2.1", true},
		{"in the allow list", []string{`{"allow":["192.0.2.0/24"]}`}, "192.0.2.9", true},
		{"outside the allow list", []string{`{"allow":["192.0.2.0/24"]}`}, "198.51.100.1", false},
		{"single allowed address", []string{`{"allow":["192.0.2.7"]}`}, "192.0.2.7", true},
		{"deny wins over allow", []string{`{"allow":["10.0.0.0/8"],"deny":["10.0.0.5"]}`}, "10.0.0.5", false},
		{"allowed next to a denied one", []string{`{"allow":["10.0.0.0/8"],"deny":["10.0.0.5"]}`}, "10.0.0.6", true},
		{"IPv4-mapped client against an IPv4 deny", []string{`{"deny":["10.0.0.0/8"]}`}, "::ffff:10.0.0.5", false},
		{"IPv4-mapped prefix allows the IPv4 client", []string{`{"allow":["::ffff:192.0.2.0/120"]}`}, "192.0.2.7", true},
		{"IPv4-mapped address denies the IPv4 client", []string{`{"deny":["::ffff:192.0.2.7"]}`}, "192.0.2.7", false},
		{"IPv6 in the allow list", []string{`{"allow":["2001:db8::/32"]}`}, "2001:db8::1", true},
		{"IPv4 client, IPv6 allow list", []string{`{"allow":["2001:db8::/32"]}`}, "10.0.0.1", false},
		{"zoned client in a denied prefix", []string{`{"deny":["fe80::/10"]}`}, "fe80::1%eth0", false},
		{"two policies: in both allow lists", []string{`{"allow":["10.0.0.0/8"]}`, `{"allow":["10.1.0.0/16"]}`}, "10.1.0.1", true},
		{"two policies: in one allow list only", []string{`{"allow":["10.0.0.0/8"]}`, `{"allow":["10.1.0.0/16"]}`}, "10.2.0.1", false},
		{"two policies: the other denies", []string{`{"allow":["10.0.0.0/8"]}`, `{"deny":["10.2.0.0/16"]}`}, "10.2.0.1", false},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			var pols []string
			for _, p := range tc.policies {
				pols = append(pols, `{"type":"ip-restriction","config":`+p+`}`)
			}
			_, _, err := authRun(authChain(t, pols...), "/", tc.client)
			if tc.allowed && err != nil {
				t.Fatalf("%s refused: %v", tc.client, err)
			}
			if !tc.allowed && err != errAddressDenied {
				t.Fatalf("%s: got %v; want %v", tc.client, err, errAddressDenied)
			}
		})
	}
}

func TestUnreadableClientAddressIsRefused(t *testing.T) {
	c := authChain(t, `{"type":"ip-restriction","config":{"deny":["10.0.0.0/8"]}}`)
	r, _, _ := authRun(c, "/", "192.0.2.1")
	r.Client = netip.Addr{}
	if err := c.Run(r); err != errAddressDenied {
		t.Fatalf("got %v; want %v", err, errAddressDenied)
	}
}

func TestACL(t *testing.T) {
	consumers := map[string]*Consumer{
		"c-alice": {ID: "c-alice", Name: "alice", Groups: []string{"staff", "ops"}},
		"c-bob":   {ID: "c-bob", Name: "bob"},
	}
	for _, tc := range []struct {
		desc     string
		policies []string
		consumer string // "" : no consumer
		want     error
	}{
		{"in an allowed group", []string{`{"allow":["staff"]}`}, "c-alice", nil},
		{"in no allowed group", []string{`{"allow":["staff"]}`}, "c-bob", errConsumerDenied},
		{"group names in any case", []string{`{"allow":["STAFF"]}`}, "c-alice", nil},
		{"in a denied group", []string{`{"deny":["Ops"]}`}, "c-alice", errConsumerDenied},
		{"deny list only admits the rest", []string{`{"deny":["ops"]}`}, "c-bob", nil},
		{"names are exact: another case is another consumer", []string{`{"allow_consumers":["BOB"]}`}, "c-bob", errConsumerDenied},
		{"not among the allowed names", []string{`{"allow_consumers":["bob"]}`}, "c-alice", errConsumerDenied},
		{"either allow list admits", []string{`{"allow":["staff"],"allow_consumers":["bob"]}`}, "c-bob", nil},
		{"deny by name wins over an allowed group", []string{`{"allow":["staff"],"deny_consumers":["alice"]}`}, "c-alice", errConsumerDenied},
		{"two policies: both admit", []string{`{"allow":["staff"]}`, `{"allow":["ops"]}`}, "c-alice", nil},
		{"two policies: the second refuses", []string{`{"allow":["staff"]}`, `{"deny_consumers":["alice"]}`}, "c-alice", errConsumerDenied},
		{"no consumer", []string{`{"allow":["staff"]}`}, "", errNotIdentified},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			var pols []string
			for _, p := range tc.policies {
				pols = append(pols, `{"type":"acl","config":`+p+`}`)
			}
			c := authChain(t, pols...)
			// Twice: the second answer comes from the remembered verdict.
			for range 2 {
				r := &Request{Consumer: consumers[tc.consumer]}
				if err := c.Run(r); err != tc.want {
					t.Fatalf("got %v; want %v", err, tc.want)
				}
			}
		})
	}
}
