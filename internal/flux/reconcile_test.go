package flux

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// A reconcile request is answered by the controller echoing its stamp;
// when a Receiver replaces the stamp after ours, the echo of its stamp
// answers ours too (the reconcile came after our request).
func TestHandledSince(t *testing.T) {
	const ours, receivers, older = "2026-11-28T02:00:01Z", "2026-11-28T02:00:02Z", "2026-11-28T01:00:00Z"
	object := func(annotation, handled string) (Object, *unstructured.Unstructured) {
		u := &unstructured.Unstructured{Object: map[string]any{}}
		u.SetAnnotations(map[string]string{RequestedAtAnnotation: annotation})
		return Object{LastHandledReconcileAt: handled}, u
	}
	for _, c := range []struct {
		annotation, handled string
		want                bool
	}{
		{ours, ours, true},
		{ours, older, false},         // not yet
		{receivers, receivers, true}, // replaced after ours, then handled
		{receivers, older, false},    // replaced, not handled yet
		{receivers, ours, true},      // ours handled before the Receiver's
		{"", older, false},
	} {
		o, u := object(c.annotation, c.handled)
		if got := handledSince(o, u, ours); got != c.want {
			t.Errorf("annotation %q, handled %q: %v, want %v", c.annotation, c.handled, got, c.want)
		}
	}
}
