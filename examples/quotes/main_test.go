package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestQuote(t *testing.T) {
	srv := httptest.NewServer(handler(newMemoryStore()))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got["quote"] == "" || got["version"] != version || got["store"] != "memory" {
		t.Fatalf("got %v", got)
	}
}

func TestPutThenGet(t *testing.T) {
	srv := httptest.NewServer(handler(newMemoryStore()))
	defer srv.Close()
	put := func(slug, body string) int {
		req, _ := http.NewRequest(http.MethodPut, srv.URL+"/quotes/"+slug, strings.NewReader(body))
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := put("smoke", `{"text":"Written by a test."}`); code != 200 {
		t.Fatalf("PUT: %d", code)
	}
	resp, err := srv.Client().Get(srv.URL + "/quotes/smoke")
	if err != nil {
		t.Fatal(err)
	}
	var q Quote
	if err := json.NewDecoder(resp.Body).Decode(&q); err != nil || q.Text != "Written by a test." {
		t.Fatalf("GET: %v %+v", err, q)
	}
	for slug, body := range map[string]string{"Bad_Slug": `{"text":"x"}`, "ok": `{"text":""}`, "ok2": `{"txt":"x"}`} {
		if code := put(slug, body); code != 400 {
			t.Errorf("PUT %s %s: %d, want 400", slug, body, code)
		}
	}
}
