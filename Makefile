# swarm-ingress: the two commands of the README, and a few helpers.
#   make demo       build, deploy on the local single-node Swarm, stream SSE through the ingress
#   make demo-down  remove everything the demo made
#   make test       go vet + go test -race ./... (integration tests use the real engine)
#   make test-cluster  the multi-node tests (TestCluster* in any package) on real
#                   three-engine Swarms built on this machine (internal/clustertest;
#                   root, iproute2, iptables, nsenter); not part of `make test`
#   make test-stress  go test -race -count=20 ./pkg/proxy/... while a CPU hog keeps every
#                   core busy (one busy loop per core, bounded by `timeout` and killed
#                   when the tests end, pass or fail): the proxy's tests must hold on a
#                   saturated machine. 6 to 7 minutes on 2 cores shared with other work.
SHELL := /bin/bash
GO ?= go
TEST_TIMEOUT ?= 15m
CLUSTER_TIMEOUT ?= 20m
# -count=1: integration results depend on the engine, not only on the sources, so
# they must not come from the test cache. Override with TESTFLAGS= for a quick loop.
TESTFLAGS ?= -count=1

.PHONY: demo demo-down test test-stress test-cluster images bench clean-images

demo:
	bash scripts/demo.sh up

demo-down:
	bash scripts/demo.sh down

# ensure-chromium: the status page's browser test (cmd/ingress) needs Chromium.
# The images are built before the tests so that a build failure shows its own
# output; the tests reuse them (tagged by content hash).
test:
	bash scripts/ensure-docker.sh
	bash scripts/ensure-chromium.sh
	$(MAKE) --no-print-directory images
	$(GO) vet ./...
	$(GO) test -race $(TESTFLAGS) -timeout $(TEST_TIMEOUT) ./...

# The hog's busy loops end by themselves after STRESS_HOG_SECONDS even if
# make itself is killed; the trap ends them as soon as the tests do.
STRESS_HOG_SECONDS ?= 3600
test-stress:
	@hogs=(); \
	trap 'kill $${hogs[@]} 2>/dev/null' EXIT; \
	for i in $$(seq "$$(nproc)"); do \
		timeout $(STRESS_HOG_SECONDS) bash -c 'while :; do :; done' & hogs+=($$!); \
	done; \
	echo "CPU hog: $${#hogs[@]} busy loops"; \
	$(GO) test -race -count=20 -timeout 60m ./pkg/proxy/...

# SWARM_INGRESS_CLUSTER=1 enables clustertest.Start, which skips otherwise; the
# tests that use it are named TestCluster*, and only the packages that have
# such tests are built.
CLUSTER_PKGS = $(shell grep -rl --include='*_test.go' '^func TestCluster' . | xargs -r -n1 dirname | sort -u)
test-cluster:
	bash scripts/ensure-docker.sh
	bash scripts/ensure-cluster-tools.sh
	$(MAKE) --no-print-directory images
	SWARM_INGRESS_CLUSTER=1 $(GO) test -race $(TESTFLAGS) -timeout $(CLUSTER_TIMEOUT) -run '^TestCluster' $(CLUSTER_PKGS)

images:
	bash scripts/go-image.sh ./internal/testbackend swarm-ingress-testbackend
	bash scripts/ingress-image.sh

# Proxy against nginx, Caddy and Traefik at equal cores (bench/run.sh, about
# 21 minutes; BENCH_QUICK=1 for a 4-minute smoke run; see bench/README.md),
# then discovery: propagation
# from ServiceCreate to the published table (20 services), first answer
# through the ingress image (10 tasks-mode services) and building a table
# from 5,000 services. Figures are printed; nothing is asserted.
bench:
	bash scripts/ensure-docker.sh
	bash bench/run.sh
	$(GO) test -run '^$$' -bench 'Propagation' -benchtime 20x ./pkg/discovery/
	$(GO) test -run '^$$' -bench 'TaskAddress|FirstAnswer' -benchtime 10x ./pkg/discovery/
	$(GO) test -run '^$$' -bench 'Rebuild5000|Build5000' -benchmem ./pkg/discovery/

# Images are a cache kept between runs; this removes them.
clean-images:
	docker image ls --format '{{.Repository}}:{{.Tag}}' \
		| grep -E '^(swarm-ingress|swarm-ingress-testbackend|swarm-ingress-sse-demo):' \
		| xargs -r docker image rm
