package cluster

import "testing"

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
