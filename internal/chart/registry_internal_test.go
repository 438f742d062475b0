package chart

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// The advice for a refused push depends on the status the registry gave,
// not on digits that happen to be in its address: a registry on port 40183
// that answers 403 is a push outside the team's prefix, not a bad password.
func TestRegistryErrorReadsTheStatusNotThePort(t *testing.T) {
	cases := []struct {
		msg  string
		want string
	}{
		{`POST "http://127.0.0.1:40183/v2/dev2/charts/hello/blobs/uploads/": response status code 403: denied: user "dev1" may not push`, "team's prefix"},
		{`HEAD "http://127.0.0.1:40340/v2/dev1/charts/hello/manifests/0.1.0": response status code 401: unauthorized`, "slipway login"},
		{`GET "http://127.0.0.1:4031/v2/x/tags/list": response status code 401: Unauthorized`, "slipway login"},
	}
	for _, tc := range cases {
		got := registryError("127.0.0.1:40183", fmt.Errorf("pushing: %w", errors.New(tc.msg))).Error()
		if !strings.Contains(got, tc.want) {
			t.Errorf("%s\n  advice does not mention %q:\n%s", tc.msg, tc.want, got)
		}
	}
	if isNotFound(errors.New(`GET "http://127.0.0.1:40404/v2/x/tags/list": response status code 500: boom`)) {
		t.Error("a 500 from port 40404 read as not found")
	}
}
