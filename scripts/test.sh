#!/usr/bin/env bash
# The project's test command (README.md): formatting, vet, staticcheck when
# installed, the real authorization server's npm packages, then every test
# with the race detector, and each benchmark once so none rots.
set -euo pipefail
cd "$(dirname "$0")/.."

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './interop/oidc-provider/node_modules/*'))
if [ -n "$unformatted" ]; then
  echo "gofmt needed on:"; echo "$unformatted"; exit 1
fi
go vet ./...
if command -v staticcheck >/dev/null 2>&1; then
  staticcheck ./...
else
  echo "staticcheck not installed; skipping (CI installs it)"
fi

# The interop tests run panva's oidc-provider, a certified OpenID provider,
# as the external authorization server.
if [ ! -d interop/oidc-provider/node_modules/oidc-provider ]; then
  npm ci --prefix interop/oidc-provider --no-audit --no-fund --loglevel=error
fi

export TEST_ARTIFACTS_DIR="${TEST_ARTIFACTS_DIR:-$PWD/artifacts}"
go test -race -count=1 -timeout 15m ./...
go test -run '^$' -bench . -benchtime 1x -benchmem ./...
