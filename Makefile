# devhost: build, test, benchmark and lint. `make help` lists the targets.
GO ?= go
PKGS ?= ./...

.PHONY: help build test bench loadtest lint fmt vet check-fmt

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

build: ## build bin/devhost (and the fc-build-dev-container compatibility name)
	$(GO) build -o bin/devhost ./cmd/devhost
	ln -sf devhost bin/fc-build-dev-container

test: ## run the whole test suite with the race detector (the README's command)
	$(GO) test -race $(PKGS)

bench: ## run every benchmark once with allocation figures
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

loadtest: ## concurrent ensures through the real binary and the doubles, 0/1,000/10,000 registered (many minutes; settings in tests/load_test.go)
	DEVHOST_LOADTEST=1 $(GO) test -run '^TestLoad$$' -count 1 -v -timeout 120m ./tests/

lint: vet check-fmt ## golangci-lint (a Go tool dependency), go vet, gofmt
	$(GO) tool golangci-lint run $(PKGS)

vet:
	$(GO) vet $(PKGS)

check-fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

fmt: ## format the Go sources
	gofmt -w $$(git ls-files '*.go')
