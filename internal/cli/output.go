package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/slipway-dev/slipway/internal/flux"
)

// outputFormat is an enum flag: a bad value is refused when flags are
// parsed, with the allowed values listed.
type outputFormat string

const (
	outputText outputFormat = "text"
	outputJSON outputFormat = "json"
	outputYAML outputFormat = "yaml"
)

var outputFormats = []string{string(outputText), string(outputJSON), string(outputYAML)}

func (o *outputFormat) String() string { return string(*o) }
func (o *outputFormat) Type() string   { return "format" }
func (o *outputFormat) Set(s string) error {
	for _, f := range outputFormats {
		if s == f {
			*o = outputFormat(s)
			return nil
		}
	}
	return fmt.Errorf("want one of %s", strings.Join(outputFormats, ", "))
}

func addOutputFlag(fs *pflag.FlagSet, o *outputFormat) {
	*o = outputText
	fs.VarP(o, "output", "o", "output format: "+strings.Join(outputFormats, ", "))
}

// printStructured writes v as JSON or YAML; it returns false for text.
func printStructured(w io.Writer, format outputFormat, v any) (bool, error) {
	switch format {
	case outputJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return true, enc.Encode(v)
	case outputYAML:
		data, err := yaml.Marshal(v)
		if err != nil {
			return true, err
		}
		_, err = w.Write(data)
		return true, err
	}
	return false, nil
}

func isCobraUsageError(err error) bool {
	msg := err.Error()
	return strings.HasPrefix(msg, "unknown command") || strings.HasPrefix(msg, "unknown flag") ||
		strings.HasPrefix(msg, "accepts ") || strings.HasPrefix(msg, "requires ")
}

// printObjects writes Kubernetes objects as a YAML stream, as --dry-run
// shows what would be committed.
func printObjects(w io.Writer, objs []runtime.Object) error {
	data, err := flux.Marshal(objs...)
	if err != nil {
		return err
	}
	_, err = w.Write(data)
	return err
}
