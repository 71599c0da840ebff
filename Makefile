# snapshot-backup. Targets that boot VMs need root, libvirtd and the host
# packages: `qemu-tests/run.sh TARGET` installs and starts those first.
SHELL     := /bin/bash
GO        ?= go
BIN       := bin
IMAGE_DIR ?= /var/lib/hostctl/image
# qemu-tests keep their appliance image here, cached by content hash.
export SB_TEST_IMAGE_DIR ?= /var/cache/snapshot-backup/test-image

UNIT_PKGS = $(shell $(GO) list ./... | grep -v /qemu-tests)

.PHONY: build image test test-unit test-qemu test-hypervisor test-image demo bench lint clean

build:
	$(GO) build -o $(BIN)/hostctl ./hostctl
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' -o $(BIN)/supervisor ./supervisor

image: build
	$(BIN)/hostctl build-image --out $(IMAGE_DIR)

# test: every package, the VM tests included (what CI runs). The test
# appliance image is built (or found in the content-hash cache) first;
# packages then run in parallel. The hypervisor VM (test-hypervisor) is
# not part of it: see there. TESTFLAGS adds go test flags, e.g.
# TESTFLAGS=-json for per-test times (qemu-tests/tools/times.py reads them).
# The whole command takes about 40 minutes on 2 cores (README); the 80m
# timeout only stops a hung package inside CI's 90-minute limit.
test: lint test-image
	SB_IMAGE_DIR=$(SB_TEST_IMAGE_DIR) $(GO) test -count=1 -timeout 80m $(TESTFLAGS) ./...

# test-unit: table tests and fakes only (-short skips the tests that build
# images or boot VMs).
test-unit:
	$(GO) test -count=1 -short $(UNIT_PKGS)

test-qemu: test-image
	SB_IMAGE_DIR=$(SB_TEST_IMAGE_DIR) $(GO) test -count=1 -timeout 45m -v ./qemu-tests/... ./supervisor/...

# test-hypervisor: hostctl in a Debian 12 hypervisor VM with real LVM, set up
# by the README's steps, its appliance a nested VM (qemu-tests/hypervisor*,
# build tag "hypervisor": about 25 minutes under TCG on 2 cores). Not in
# `make test`: its nested appliances need the VM's KVM on QEMU 7.2's
# emulated SVM, and that stalls the VM for minutes or crashes its kernel
# (README, Development). Run it on a host with working nested KVM.
# Narrow it with RUN=, e.g. make test-hypervisor RUN=TestHypervisorLVM/backup
RUN ?= TestHypervisor
test-hypervisor: test-image
	cd qemu-tests && SB_IMAGE_DIR=$(SB_TEST_IMAGE_DIR) $(GO) test -tags hypervisor -count=1 -timeout 60m -v -run '$(RUN)' .

test-image: build
	$(BIN)/hostctl build-image --out $(SB_TEST_IMAGE_DIR) --cache $(dir $(SB_TEST_IMAGE_DIR))rootfs-cache \
		--supervisor $(BIN)/supervisor --rescue-domain ""

demo: build
	$(GO) run ./qemu-tests/cmd/demo

# bench: every benchmark, the hypervisor VM's too (nested appliance, LVM
# snapshot create/remove, the pause window of a two-LV client, each beside
# the figure on this host).
bench: test-image
	SB_IMAGE_DIR=$(SB_TEST_IMAGE_DIR) $(GO) test -tags hypervisor -count=1 -run '^$$' -bench . -benchtime 1x -timeout 60m ./qemu-tests/...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags hypervisor ./qemu-tests/

clean:
	rm -rf $(BIN)
