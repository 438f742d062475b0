package release

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// A smoke check's or a bake's path is the team's input, asked with the
// platform's rights: it must not climb out of the app's Service proxy to
// another object of the cluster.
func TestProxyPathStaysUnderTheService(t *testing.T) {
	var (
		mu   sync.Mutex
		seen []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.URL.Path)
		mu.Unlock()
		if strings.HasSuffix(r.URL.Path, "/echo") {
			body, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, "%s %s %s", r.Method, r.Header.Get("Content-Type"), body)
			return
		}
		if strings.HasSuffix(r.URL.Path, "/fails") {
			http.Error(w, "no quote today", http.StatusInternalServerError)
			return
		}
		w.Write([]byte("secret data"))
	}))
	defer srv.Close()
	c := &Clients{Kube: kubernetes.NewForConfigOrDie(&rest.Config{Host: srv.URL})}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "hello"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}
	ctx := context.Background()

	for _, attack := range []string{
		"/../../../../namespaces/dev2-staging/secrets",
		"/a/../../../../../api/v1/namespaces/dev2-staging/secrets",
		"/./../x", "/..", "/x/..",
		`/..\..\secrets`, "/%2e%2e/secrets", "/x?watch=true", "relative",
	} {
		if _, _, err := proxyGet(ctx, c, "dev1-staging", svc, attack); err == nil {
			t.Errorf("path %q was asked", attack)
		}
		if _, err := Load(ctx, c, "dev1-staging", "hello", attack, 1); err == nil {
			t.Errorf("Load took path %q", attack)
		}
	}
	mu.Lock()
	if len(seen) != 0 {
		t.Fatalf("refused paths reached the API server: %v", seen)
	}
	mu.Unlock()

	for _, good := range []string{"/", "/healthz", "/api/v1/quotes", "/a..b/c.d"} {
		status, _, err := proxyGet(ctx, c, "dev1-staging", svc, good)
		if err != nil || status != 200 {
			t.Errorf("path %q: %d %v", good, status, err)
		}
	}
	// The app's own status comes through, a 500 too.
	if status, body, err := proxyGet(ctx, c, "dev1-staging", svc, "/fails"); err != nil || status != 500 || !strings.Contains(string(body), "no quote today") {
		t.Errorf("a 500 of the app reads as %d %q %v", status, body, err)
	}
	// A write check sends its method and body, JSON as such.
	if status, body, err := proxyDo(ctx, c, "dev1-staging", svc, http.MethodPut, "/echo", `{"text":"x"}`); err != nil || status != 200 || string(body) != `PUT application/json {"text":"x"}` {
		t.Errorf("a PUT reads as %d %q %v", status, body, err)
	}
	if _, _, err := proxyDo(ctx, c, "dev1-staging", svc, http.MethodPut, "/../echo", "x"); err == nil {
		t.Error("a PUT climbed out of the Service")
	}
	for _, p := range seen {
		if !strings.HasPrefix(p, "/api/v1/namespaces/dev1-staging/services/hello:80/proxy") {
			t.Errorf("a request left the Service's proxy: %s", p)
		}
	}
}
