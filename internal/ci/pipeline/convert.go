package pipeline

import (
	"sort"
	"strconv"

	"gopkg.in/yaml.v3"

	"github.com/slipway-dev/slipway/internal/ci/expr"
)

// toAny turns a node into the values expressions work with.
func toAny(n *yaml.Node) any {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) > 0 {
			return toAny(n.Content[0])
		}
		return nil
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			m[n.Content[i].Value] = toAny(n.Content[i+1])
		}
		return m
	case yaml.SequenceNode:
		list := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			list = append(list, toAny(c))
		}
		return list
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return nil
		case "!!bool":
			var b bool
			if n.Decode(&b) == nil {
				return b
			}
		case "!!int", "!!float":
			if f, err := strconv.ParseFloat(n.Value, 64); err == nil {
				return f
			}
			var f float64
			if n.Decode(&f) == nil {
				return f
			}
		}
		return n.Value
	}
	return nil
}

// toNode turns an expression's value into a node placed at at.
func (e *expander) toNode(at *yaml.Node, v any) *yaml.Node {
	switch x := v.(type) {
	case map[string]any:
		n := e.node(at, &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"})
		for _, k := range sortedKeys(x) {
			n.Content = append(n.Content, e.node(at, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k}), e.toNode(at, x[k]))
		}
		return n
	case []any:
		n := e.node(at, &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"})
		for _, item := range x {
			n.Content = append(n.Content, e.toNode(at, item))
		}
		return n
	case nil:
		return e.node(at, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: ""})
	case bool:
		return e.node(at, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(x)})
	case float64:
		return e.node(at, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!float", Value: expr.String(x)})
	}
	return e.node(at, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: expr.String(v)})
}

// sortedKeys keeps expansion deterministic: maps have no order.
func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
