package main

import (
	"encoding/json"
	"net/http/httptest"
	"testing"
)

func TestQuote(t *testing.T) {
	srv := httptest.NewServer(handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got["quote"] == "" || got["version"] != version {
		t.Fatalf("got %v", got)
	}
}
