package up

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPlanRefusesUnsafeKeyHook: up never runs a key-loading hook whose path is
// not plain data (issue 9, finding 2), even from a hand-written config.
func TestPlanRefusesUnsafeKeyHook(t *testing.T) {
	fx := newFixture(t)
	pwned := filepath.Join(t.TempDir(), "pwned")
	c := hubConfig()
	c.Interface.PostUp = append(c.Interface.PostUp, "wg set %i private-key /etc/wireguard/x.key; touch "+pwned)
	_, err := makePlan(context.Background(), req("wg0", c, false, false), &fx.opts)
	if err == nil || !strings.Contains(err.Error(), "refusing to run it") {
		t.Errorf("plan with an injected key hook: %v, want refused", err)
	}
	if _, err := os.Stat(pwned); err == nil {
		t.Error("the injected command ran")
	}
}
