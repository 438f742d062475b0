package demo

import (
	"bytes"
	"errors"
)

// FailEveryOther rewrites the quotes example's main.go into the broken
// version dev2 ships: after its first 10 requests for a quote, every
// other one answers 500. Its unit test and staging's tests (the chart's
// test hook and the smoke check: a request each; probes ask /healthz)
// pass; only the error ratio under traffic, as Prometheus sees it, shows
// the fault.
func FailEveryOther(mainGo []byte) ([]byte, error) {
	const handler = "mux.HandleFunc(\"GET /{$}\", func(w http.ResponseWriter, r *http.Request) {\n"
	const imports = "\t\"os\"\n"
	if bytes.Count(mainGo, []byte(handler)) != 1 || bytes.Count(mainGo, []byte(imports)) != 1 {
		return nil, errors.New("the quotes app's main.go no longer has the handler of \"/\" or the import the fault is put in")
	}
	out := bytes.Replace(mainGo, []byte(imports), []byte(imports+"\t\"sync/atomic\"\n"), 1)
	out = bytes.Replace(out, []byte(handler), []byte(handler+
		"\t\tif n := served.Add(1); n > 10 && n%2 == 0 {\n"+
		"\t\t\thttp.Error(w, \"no quote today\", http.StatusInternalServerError)\n"+
		"\t\t\treturn\n"+
		"\t\t}\n"), 1)
	return append(out, []byte("\n// served counts the requests for a quote.\nvar served atomic.Int64\n")...), nil
}
