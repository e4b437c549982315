package rpcpeek_test

import (
	"bytes"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/encoding/json"

	"github.com/mcp-gateway/mcp-gateway/internal/rpcpeek"
	"github.com/mcp-gateway/mcp-gateway/tools"
)

func rpcCall(id, op string) string {
	return `{"jsonrpc":"2.0","id":` + id + `,"method":"tools/call","params":{"name":"calculator","arguments":{"operation":"` + op + `","a":6,"b":3}}}`
}

// The bodies of the gateway's BenchmarkRequiredScopes, so that the numbers
// compare.
var benchBodies = []struct {
	name string
	body []byte
}{
	{"single", []byte(rpcCall("1", "divide"))},
	{"batch", []byte("[" + rpcCall("1", "add") + "," + rpcCall("2", "divide") + "," + rpcCall("3", "add") + "]")},
	{"other", []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)},
}

// BenchmarkPeek is the peek alone.
func BenchmarkPeek(b *testing.B) {
	for _, bb := range benchBodies {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bb.body)))
			cpuLoop(b, func() {
				if _, err := rpcpeek.Peek(bb.body); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

// BenchmarkRequiredScopes is what the gateway's step-up does per request
// with the built-in policy: peek, read the one argument each call's rule
// needs, decide, and add up the scopes to check. It replaces the gateway's
// BenchmarkRequiredScopes (parseRPC + requiredScopes).
func BenchmarkRequiredScopes(b *testing.B) {
	p := tools.Policy()
	for _, bb := range benchBodies {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bb.body)))
			var buf [8]string
			cpuLoop(b, func() {
				if _, err := requiredScopes(p, bb.body, buf[:0]); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

// BenchmarkLegacyRequiredScopes is the gateway's step-up peek as it was
// before this package (gateway/stepup.go parseRPC + requiredScopes and the
// calculator-only scopes.Policy, at commit fa91aa0), copied so that both
// run side by side in one process under the same load.
func BenchmarkLegacyRequiredScopes(b *testing.B) {
	p := legacyPolicy{byOperation: map[string]string{"add": "op:add", "subtract": "op:sub", "multiply": "op:mult", "divide": "op:div"}}
	for _, bb := range benchBodies {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bb.body)))
			cpuLoop(b, func() { _ = legacyRequiredScopes(p, legacyParseRPC(bb.body)) })
		})
	}
}

type legacyPolicy struct{ byOperation map[string]string }

func (p legacyPolicy) forToolCall(tool, operation string) []string {
	if tool != "calculator" {
		return nil
	}
	if s, ok := p.byOperation[operation]; ok {
		return []string{s}
	}
	return nil
}

type legacyMessage struct {
	Method string `json:"method"`
	Params struct {
		Name      string `json:"name"`
		Arguments struct {
			Operation string `json:"operation"`
		} `json:"arguments"`
	} `json:"params"`
}

func legacyParseRPC(body []byte) []legacyMessage {
	body = bytes.TrimLeft(body, " \t\r\n")
	if len(body) == 0 || legacyTooDeep(body, 1000) {
		return nil
	}
	if body[0] == '[' {
		var raw []json.RawMessage
		if err := legacyDecode(body, &raw); err != nil {
			return nil
		}
		var msgs []legacyMessage
		for _, r := range raw {
			var m legacyMessage
			if legacyDecode(r, &m) == nil {
				msgs = append(msgs, m)
			}
		}
		return msgs
	}
	var m legacyMessage
	if err := legacyDecode(body, &m); err != nil {
		return nil
	}
	return []legacyMessage{m}
}

func legacyRequiredScopes(p legacyPolicy, msgs []legacyMessage) []string {
	var out []string
	for _, m := range msgs {
		if m.Method != "tools/call" {
			continue
		}
		for _, s := range p.forToolCall(m.Params.Name, m.Params.Arguments.Operation) {
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}

func legacyDecode(b []byte, v any) error {
	_, err := json.Parse(b, v, json.DontMatchCaseInsensitiveStructFields)
	return err
}

func legacyTooDeep(b []byte, max int) bool {
	depth := 0
	inString, escaped := false, false
	for _, c := range b {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
			if depth > max {
				return true
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return false
}

// cpuLoop runs f in the benchmark loop and also reports the process's CPU
// time per operation (getrusage, all threads, so the garbage collector's
// share counts): on a shared machine, wall time measures the neighbours as
// much as the code.
func cpuLoop(b *testing.B, f func()) {
	var before, after syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	n := 0
	for b.Loop() {
		f()
		n++
	}
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	cpu := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(n), "cpu-ns/op")
}

// BenchmarkPairedRequiredScopes runs the legacy peek and this one in
// alternating rounds of 200 calls each and reports the medians over the
// rounds: on a loaded machine (other processes taking the CPU for
// milliseconds at a time) the median ratio is far steadier than two
// separate benchmark runs. One operation is one pair of rounds.
func BenchmarkPairedRequiredScopes(b *testing.B) {
	p := tools.Policy()
	lp := legacyPolicy{byOperation: map[string]string{"add": "op:add", "subtract": "op:sub", "multiply": "op:mult", "divide": "op:div"}}
	const round = 200
	for _, bb := range benchBodies {
		b.Run(bb.name, func(b *testing.B) {
			var legacy, current, ratio []float64
			var buf [8]string
			for b.Loop() {
				t0 := time.Now()
				for range round {
					_ = legacyRequiredScopes(lp, legacyParseRPC(bb.body))
				}
				t1 := time.Now()
				for range round {
					if _, err := requiredScopes(p, bb.body, buf[:0]); err != nil {
						b.Fatal(err)
					}
				}
				t2 := time.Now()
				l, c := float64(t1.Sub(t0))/round, float64(t2.Sub(t1))/round
				legacy, current, ratio = append(legacy, l), append(current, c), append(ratio, c/l)
			}
			b.ReportMetric(median(legacy), "legacy-ns/call")
			b.ReportMetric(median(current), "new-ns/call")
			b.ReportMetric(median(ratio), "new/legacy")
		})
	}
}

func median(xs []float64) float64 {
	slices.Sort(xs)
	return xs[len(xs)/2]
}
