// probe is a hostile pipeline job: each attempt to reach what a team's job
// must not reach prints "refused: WHAT: why" or "REACHED: WHAT". It
// always exits 0, so the run's log holds every answer.
package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

const sa = "/var/run/secrets/kubernetes.io/serviceaccount"

func main() {
	home := os.Getenv("PLATFORM_HOME")
	// The platform's secrets, by the paths they have on its machine.
	for _, f := range []string{
		home + "/admin-password", home + "/users.yaml", home + "/pipelines/credentials/ci-dev2",
		home + "/cluster/pki/ca.key", home + "/cluster/admin.kubeconfig", "/root/.docker/config.json",
		"/var/lib/slipway/admin-password",
	} {
		if _, err := os.ReadFile(f); err != nil {
			fmt.Printf("refused: read %s: %v\n", f, err)
		} else {
			fmt.Printf("REACHED: read %s\n", f)
		}
	}
	if os.Geteuid() == 0 {
		fmt.Println("REACHED: root")
	} else {
		fmt.Printf("refused: root: running as uid %d\n", os.Geteuid())
	}
	status, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(l, "CapEff:") {
			if strings.TrimSpace(strings.TrimPrefix(l, "CapEff:")) == "0000000000000000" {
				fmt.Println("refused: capabilities: none")
			} else {
				fmt.Println("REACHED: capabilities: " + l)
			}
		}
	}

	// The API server, with the job's own token.
	token, _ := os.ReadFile(sa + "/token")
	ca, _ := os.ReadFile(sa + "/ca.crt")
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	api := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	call := func(what, method, path, body string, header map[string]string) {
		req, _ := http.NewRequest(method, "https://kubernetes.default.svc"+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+string(bytes.TrimSpace(token)))
		req.Header.Set("Content-Type", "application/json")
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := api.Do(req)
		if err != nil {
			fmt.Printf("refused: %s: %v\n", what, err)
			return
		}
		defer resp.Body.Close()
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		if resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusUnauthorized {
			fmt.Printf("refused: %s: %d\n", what, resp.StatusCode)
		} else {
			fmt.Printf("REACHED: %s: %d %s\n", what, resp.StatusCode, bytes.ReplaceAll(msg, []byte("\n"), nil))
		}
	}
	call("act as admin", "GET", "/api/v1/namespaces/kube-system/secrets", "", map[string]string{"Impersonate-User": "admin", "Impersonate-Group": "system:masters"})
	call("read kube-system secrets", "GET", "/api/v1/namespaces/kube-system/secrets", "", nil)
	call("read dev2-staging pods", "GET", "/api/v1/namespaces/dev2-staging/pods", "", nil)
	call("read dev2-ci secrets", "GET", "/api/v1/namespaces/dev2-ci/secrets", "", nil)
	call("create a ClusterRoleBinding", "POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
		`{"metadata":{"name":"dev1-is-admin"},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"cluster-admin"},"subjects":[{"kind":"ServiceAccount","name":"ci","namespace":"dev1-ci"}]}`, nil)
	call("create a privileged pod", "POST", "/api/v1/namespaces/dev1-staging/pods",
		`{"metadata":{"name":"escape"},"spec":{"containers":[{"name":"x","image":"127.0.0.1:5000/slipway/ci:latest","securityContext":{"privileged":true},"volumeMounts":[{"name":"root","mountPath":"/host"}]}],"volumes":[{"name":"root","hostPath":{"path":"/"}}]}}`, nil)
	call("write the tested evidence", "POST", "/api/v1/namespaces/slipway-system/configmaps",
		`{"metadata":{"name":"history-dev1-staging-forged"},"data":{"hello":"[]"}}`, nil)
	call("deploy in dev1-prod", "POST", "/apis/apps/v1/namespaces/dev1-prod/deployments",
		`{"metadata":{"name":"x"},"spec":{"selector":{"matchLabels":{"a":"b"}},"template":{"metadata":{"labels":{"a":"b"}},"spec":{"containers":[{"name":"x","image":"x"}]}}}}`, nil)

	// dev2's Go cache volume, claimed from dev1-staging (where the job
	// may create claims): the volume binds only to dev2-ci's claim.
	claim, _ := http.NewRequest("POST", "https://kubernetes.default.svc/api/v1/namespaces/dev1-staging/persistentvolumeclaims",
		strings.NewReader(`{"metadata":{"name":"steal-cache"},"spec":{"accessModes":["ReadWriteOnce"],"storageClassName":"slipway-go-cache","volumeName":"slipway-go-cache-dev2-ci","resources":{"requests":{"storage":"1Gi"}}}}`))
	claim.Header.Set("Authorization", "Bearer "+string(bytes.TrimSpace(token)))
	claim.Header.Set("Content-Type", "application/json")
	if resp, err := api.Do(claim); err == nil {
		fmt.Printf("claim on dev2's Go cache: %d\n", resp.StatusCode)
		resp.Body.Close()
	}
	time.Sleep(5 * time.Second)
	req0, _ := http.NewRequest("GET", "https://kubernetes.default.svc/api/v1/namespaces/dev1-staging/persistentvolumeclaims/steal-cache", nil)
	req0.Header.Set("Authorization", "Bearer "+string(bytes.TrimSpace(token)))
	if resp, err := api.Do(req0); err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if bytes.Contains(body, []byte(`"phase":"Bound"`)) {
			fmt.Println("REACHED: bind dev2's Go cache")
		} else {
			fmt.Println("refused: bind dev2's Go cache: not bound")
		}
	} else {
		fmt.Printf("refused: bind dev2's Go cache: %v\n", err)
	}

	// etcd, on the node, without a client certificate.
	node := os.Getenv("NODE_IP")
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", net.JoinHostPort(node, "2379"), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		fmt.Printf("refused: etcd: %v\n", err)
	} else {
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(conn, "GET /v3/kv/range HTTP/1.1\r\nHost: etcd\r\n\r\n")
		buf := make([]byte, 64)
		if _, err := conn.Read(buf); err != nil {
			fmt.Printf("refused: etcd: %v\n", err)
		} else {
			fmt.Printf("REACHED: etcd: %q\n", buf)
		}
		conn.Close()
	}

	// The registry, pushing under dev2/ with dev1's CI account.
	reg := os.Getenv("SLIPWAY_REGISTRY_ADDR")
	// Over HTTPS, trusting the platform's CA as the job is told to
	// (SSL_CERT_FILE): only the registry's own refusal counts.
	req, _ := http.NewRequest("POST", "https://"+reg+"/v2/dev2/quotes/blobs/uploads/", nil)
	req.SetBasicAuth(os.Getenv("SLIPWAY_REGISTRY_USERNAME"), os.Getenv("SLIPWAY_REGISTRY_PASSWORD"))
	if resp, err := http.DefaultClient.Do(req); err != nil {
		fmt.Printf("could not ask: push under dev2/ in the registry: %v\n", err)
	} else {
		resp.Body.Close()
		if resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusUnauthorized {
			fmt.Printf("refused: push under dev2/ in the registry: %d\n", resp.StatusCode)
		} else {
			fmt.Printf("REACHED: push under dev2/ in the registry: %d\n", resp.StatusCode)
		}
	}
}
