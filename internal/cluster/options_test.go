package cluster

import (
	"testing"

	"github.com/BurntSushi/toml"
)

func TestDefaultsAreConsistent(t *testing.T) {
	o := Defaults("/var/lib/slipway/cluster")
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	if o.ServiceIP() != "10.96.0.1" || o.DNSIP() != "10.96.0.10" {
		t.Fatalf("service %s dns %s", o.ServiceIP(), o.DNSIP())
	}
	o.Registry = "127.0.0.1:5000"
	if o.RegistryNodeAddr() != "10.244.0.1:5000" {
		t.Fatalf("registry on the node: %s", o.RegistryNodeAddr())
	}
	o.NodeIP = "192.0.2.1"
	if o.Validate() == nil {
		t.Fatal("a node address outside the pod range was accepted")
	}
}

// TestContainerdPullsFromMoreRegistries: the node's containerd gets each
// further registry's endpoint, CA and credentials, as TOML containerd
// reads.
func TestContainerdPullsFromMoreRegistries(t *testing.T) {
	o := Defaults("/var/lib/slipway/cluster")
	o.Registry, o.RegistryCA, o.RegistryUser, o.RegistryPassword = "127.0.0.1:5000", "/ca.crt", "node", "pw"
	o.MoreRegistries = []NodeRegistry{
		{Host: "myacr.azurecr.io", Username: "puller", Password: `p"w`},
		{Host: "127.0.0.1:5555", PlainHTTP: true, CAFile: "/ignored.crt"},
		{Host: "registry.example.com", CAFile: "/example-ca.crt"},
	}
	var conf struct {
		Plugins map[string]struct {
			Registry struct {
				Mirrors map[string]struct{ Endpoint []string }
				Configs map[string]struct {
					TLS struct {
						CAFile string `toml:"ca_file"`
					}
					Auth struct{ Username, Password string }
				}
			}
		}
	}
	if _, err := toml.Decode((&Cluster{opts: o}).containerdConfig(), &conf); err != nil {
		t.Fatalf("containerd's configuration does not parse: %v", err)
	}
	reg := conf.Plugins["io.containerd.grpc.v1.cri"].Registry
	for host, want := range map[string]string{
		"127.0.0.1:5000": "https://127.0.0.1:5000", "10.244.0.1:5000": "https://10.244.0.1:5000",
		"myacr.azurecr.io": "https://myacr.azurecr.io", "127.0.0.1:5555": "http://127.0.0.1:5555", "registry.example.com": "https://registry.example.com",
	} {
		if got := reg.Mirrors[host].Endpoint; len(got) != 1 || got[0] != want {
			t.Errorf("%s: endpoint %v, want %s", host, got, want)
		}
	}
	if a := reg.Configs["myacr.azurecr.io"].Auth; a.Username != "puller" || a.Password != `p"w` {
		t.Errorf("ACR's credentials: %+v", a)
	}
	if ca := reg.Configs["127.0.0.1:5555"].TLS.CAFile; ca != "" {
		t.Errorf("a plain-HTTP registry got a CA: %s", ca)
	}
	if ca := reg.Configs["registry.example.com"].TLS.CAFile; ca != "/example-ca.crt" {
		t.Errorf("registry.example.com's CA: %q", ca)
	}
}
