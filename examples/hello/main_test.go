package main

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHello(t *testing.T) {
	srv := httptest.NewServer(handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), "version "+version) {
		t.Fatalf("got %q", body)
	}
}
