package gateway

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/mcp-gateway/mcp-gateway/metrics"
	"github.com/mcp-gateway/mcp-gateway/tools"
)

// TestMain fails the package's tests if any goroutine outlives them.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newMetrics is the gateway's metrics with its real label sets.
func newMetrics() *metrics.Metrics {
	return metrics.New(metrics.Labels{
		AuthOutcomes: labelValues(AllAuthOutcomes()),
		Tools:        []string{tools.CalculatorTool, tools.WhoamiTool},
		Operations:   tools.Operations(),
	})
}

func labelValues[S ~string](vs []S) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = string(v)
	}
	return out
}
