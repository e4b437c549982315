package scopes

import (
	"bytes"

	"go.yaml.in/yaml/v3"
)

// YAML renders the policy as a document [ParsePolicy] reads back to the
// same decisions: what the doctor shows as the policy in force, and a
// canonical form (flow lists, rules in declared order). A nil or zero
// Policy renders as "default: deny".
func (p *Policy) YAML() []byte {
	root := &yaml.Node{Kind: yaml.MappingNode}
	if p == nil || !p.valid {
		add(root, "default", needNode(need{deny: true}))
		return encode(root)
	}
	add(root, "default", needNode(p.def))
	if len(p.described) > 0 {
		m := &yaml.Node{Kind: yaml.MappingNode}
		for _, s := range p.described {
			add(m, s, str(p.descriptions[s]))
		}
		add(root, "scopes", m)
	}
	if len(p.rules) > 0 {
		tools := &yaml.Node{Kind: yaml.MappingNode}
		for _, r := range p.rules {
			if r.argument == "" {
				add(tools, r.key, needNode(r.need))
				continue
			}
			rule := &yaml.Node{Kind: yaml.MappingNode}
			add(rule, "argument", str(r.argument))
			values := &yaml.Node{Kind: yaml.MappingNode}
			for _, v := range r.order {
				add(values, v, needNode(r.values[v]))
			}
			add(rule, "values", values)
			add(rule, "default", needNode(r.other))
			add(tools, r.key, rule)
		}
		add(root, "tools", tools)
	}
	return encode(root)
}

func encode(n *yaml.Node) []byte {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	err := enc.Encode(n)
	if err == nil {
		err = enc.Close()
	}
	out := buf.Bytes()
	if err != nil { // cannot happen: the tree holds only strings, lists and mappings
		return []byte("default: deny\n")
	}
	return out
}

func add(m *yaml.Node, key string, v *yaml.Node) {
	m.Content = append(m.Content, str(key), v)
}

// str is a string scalar: the encoder quotes it whenever the plain form
// would read back as something else ("true", "123", "", "a: b").
func str(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }

func needNode(n need) *yaml.Node {
	if n.deny {
		return str("deny")
	}
	seq := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
	for _, s := range n.scopes {
		seq.Content = append(seq.Content, str(s))
	}
	return seq
}
