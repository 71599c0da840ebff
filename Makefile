# snapshot-backup. Targets that boot VMs need root, libvirtd and the host
# packages: `qemu-tests/run.sh TARGET` installs and starts those first.
SHELL     := /bin/bash
GO        ?= go
BIN       := bin
IMAGE_DIR ?= /var/lib/hostctl/image
# qemu-tests keep their appliance image here, cached by content hash.
export SB_TEST_IMAGE_DIR ?= /var/cache/snapshot-backup/test-image

UNIT_PKGS = $(shell $(GO) list ./... | grep -v /qemu-tests)

.PHONY: build image test test-unit test-qemu demo bench lint clean

build:
	$(GO) build -o $(BIN)/hostctl ./hostctl
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' -o $(BIN)/supervisor ./supervisor

image: build
	$(BIN)/hostctl build-image --out $(IMAGE_DIR)

test: lint test-unit test-qemu

test-unit:
	$(GO) test -count=1 $(UNIT_PKGS)

test-qemu: build
	$(GO) test -count=1 -timeout 45m -v ./qemu-tests/...

demo: build
	$(GO) run ./qemu-tests/cmd/demo

bench: build
	$(GO) test -count=1 -run '^$$' -bench . -benchtime 1x -timeout 40m ./qemu-tests/...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

clean:
	rm -rf $(BIN)
