# ocinotify build: system packages -> BPF object + skeleton -> addon -> TypeScript.
SHELL := /bin/bash
.DEFAULT_GOAL := build

ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
CLANG ?= clang
BPFTOOL ?= bpftool
OUT := bpf/.output
BTF ?= /sys/kernel/btf/vmlinux

# Debian packages the build, the tests and the demo need.
DEB_PACKAGES := clang llvm bpftool libbpf-dev libelf-dev zlib1g-dev pkg-config make g++ python3 \
	runc busybox-static iproute2 procps util-linux \
	containerd \
	podman conmon crun runsc docker.io \
	bpftrace \
	gcc libasan8 libubsan1

.PHONY: deps build bpf addon ts test test-unit test-integration demo docs clean

# apt-get source (scripts/build-prebuilt.sh) needs dpkg-source.
DEB_PACKAGES += dpkg-dev

# Installs those of the Debian packages $(1) that are missing.
define install-missing
missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
if [ -n "$$missing" ]; then \
	echo "installing: $$missing"; \
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
fi
endef

deps:
	@$(call install-missing,$(DEB_PACKAGES))
	@[ -d node_modules/.bin ] && [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund --ignore-scripts

build: bpf addon ts

$(OUT)/vmlinux.h: | $(OUT)
	$(BPFTOOL) btf dump file $(BTF) format c > $@.tmp && mv $@.tmp $@

$(OUT)/ocinotify.bpf.o: bpf/ocinotify.bpf.c bpf/ocinotify.h $(OUT)/vmlinux.h
	$(CLANG) -g -O2 -Wall -Werror -target bpf -D__TARGET_ARCH_$(ARCH) -I$(OUT) -Ibpf -c $< -o $@.tmp
	llvm-strip -g $@.tmp 2>/dev/null || true
	mv $@.tmp $@

$(OUT)/ocinotify.skel.h: $(OUT)/ocinotify.bpf.o
	$(BPFTOOL) gen skeleton $< name ocinotify_bpf > $@.tmp && mv $@.tmp $@

$(OUT):
	mkdir -p $@

bpf: $(OUT)/ocinotify.skel.h

addon: bpf
	npx node-gyp rebuild --silent

ts:
	npx tsc -p tsconfig.json
	npx tsc -p tsconfig.cjs.json
	@# The CJS build has no import.meta: give it the CommonJS equivalent.
	sed -i 's|import\.meta\.url|require("node:url").pathToFileURL(__filename).href|' dist/cjs/module-url.js
	echo '{"type":"commonjs"}' > dist/cjs/package.json

test: deps build
	npx tsc -p tsconfig.test.json
	npx vitest run
	$(MAKE) --no-print-directory test-asan

demo: deps build
	node examples/demo.mjs

# docs/api.md from the declarations src/index.ts exports (test/unit/api-docs.test.ts checks it is current).
docs:
	node scripts/api-docs.mjs > docs/api.md.tmp && mv docs/api.md.tmp docs/api.md

# Property-based tests at depth: >= 100,000 cases per property (make test runs 3,000).
.PHONY: fuzz
fuzz: deps
	OCINOTIFY_FUZZ_RUNS=$${OCINOTIFY_FUZZ_RUNS:-100000} npx vitest run test/unit/property.test.ts

# The addon built with AddressSanitizer + UBSan, running the tests that exercise native code
# (~2 minutes). Built in a temporary copy of the tree so that build/Release stays the normal
# addon; node itself is not instrumented, so gcc's ASan runtime is preloaded. Leak detection
# is off: it would report V8's own allocations.
ASAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g
ASAN_TESTS ?= test/integration/argv-forms.test.ts test/integration/hostile-spec.test.ts \
	test/integration/hostile-argv.test.ts test/integration/hostile-process.test.ts test/integration/privacy.test.ts
.PHONY: test-asan
test-asan: deps bpf
	@set -e; dir=$$(mktemp -d /tmp/ocinotify-asan.XXXXXX); trap 'rm -rf "$$dir"' EXIT; \
	tar -c --exclude=./.git --exclude=./node_modules --exclude=./build --exclude=./dist --exclude=./bench/results . | tar -x -C "$$dir"; \
	ln -s "$(CURDIR)/node_modules" "$$dir/node_modules"; \
	cd "$$dir"; \
	CXXFLAGS="$(ASAN_FLAGS)" LDFLAGS="-fsanitize=address,undefined" npx node-gyp rebuild --silent; \
	nm -D build/Release/ocinotify.node | grep -q __asan_init; \
	$(MAKE) --no-print-directory ts >/dev/null; \
	LD_PRELOAD="$$(gcc -print-file-name=libasan.so)" ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 npx vitest run $(ASAN_TESTS)

# Benchmarks (docs/benchmarks.md): one markdown table on stdout, bench/results/<UTC date>.json.
.PHONY: bench
bench: deps build
	npx tsc -p bench/tsconfig.json
	node --import ./bench/ts/register.mjs bench/run.ts

clean:
	rm -rf $(OUT) build dist

# The prebuilt addon `npm pack` ships (README "Installing: the prebuilt addon"): libbpf, libelf and zlib rebuilt
# -fPIC from Debian's source packages into build-static/ and linked in, so that the .node needs
# only libc and libstdc++. Run on an arm64 Debian 12 machine for prebuilds/linux-arm64.
NODE_ARCH := $(shell node -p process.arch 2>/dev/null)
PREBUILT := prebuilds/linux-$(NODE_ARCH)/ocinotify.node
.PHONY: prebuilt
prebuilt: deps $(PREBUILT)
$(PREBUILT): $(OUT)/ocinotify.skel.h binding.gyp $(wildcard addon/*.cc addon/*.h) scripts/build-prebuilt.sh
	scripts/build-prebuilt.sh

# test/integration/package.test.ts (npm pack, install without a compiler) needs the prebuilt.
test: prebuilt

# The same tests on each Node line with the same prebuilt addon (Node-API: no rebuild). Node
# binaries are the npm registry's node-linux-<arch> packages, kept in build-static/node/.
# Run in a copy of the tree without build/, so that the addon loaded is the prebuilt one;
# npm_config_nodedir: node-gyp takes the headers from the package (the build-from-source test).
NODE_VERSIONS ?= 20.20.2 22.23.3 24.21.0
NODE_MATRIX_TESTS ?= test/unit test/integration/lifecycle.test.ts test/integration/modes.test.ts \
	test/integration/gate.test.ts test/integration/package.test.ts
.PHONY: test-node-matrix
test-node-matrix: deps build prebuilt
	@set -e; for v in $(NODE_VERSIONS); do \
		[ -x build-static/node/$$v/node_modules/node-linux-$(NODE_ARCH)/bin/node ] || \
			npm install --prefix build-static/node/$$v --no-save --no-audit --no-fund --silent node-linux-$(NODE_ARCH)@$$v; \
	done
	@set -e; dir=$$(mktemp -d /tmp/ocinotify-matrix.XXXXXX); trap 'rm -rf "$$dir"' EXIT; \
	tar -c --exclude=./.git --exclude=./node_modules --exclude=./build --exclude=./build-static \
		--exclude=./bench/results . | tar -x -C "$$dir"; \
	ln -s "$(CURDIR)/node_modules" "$$dir/node_modules"; \
	cd "$$dir"; \
	for v in $(NODE_VERSIONS); do \
		bin=$(CURDIR)/build-static/node/$$v/node_modules/node-linux-$(NODE_ARCH)/bin; \
		echo "== node $$($$bin/node --version) with $(PREBUILT)"; \
		PATH="$$bin:$$PATH" npm_config_nodedir="$$(dirname $$bin)" \
			$$bin/node node_modules/vitest/vitest.mjs run $(NODE_MATRIX_TESTS); \
	done

# ~4 minutes; after the matrix, make test's own recipe runs the whole suite on the machine's node.
test: test-node-matrix

# The tests below on Debian's own kernels under qemu (README "Testing on other kernels"), each
# booted on this machine's / with this checkout's build; 15 to 25 minutes per kernel. KERNELS: a
# line ("6.1": its newest point release in the apt index) or an exact release ("6.1.0-47-amd64").
KERNELS ?= 6.1 6.12
KERNEL_TESTS ?= test/integration/lifecycle.test.ts test/integration/argv-forms.test.ts \
	test/integration/gate.test.ts test/integration/ordering.test.ts \
	test/integration/hostile-spec.test.ts test/integration/podman.test.ts
KERNEL_PACKAGES := qemu-system-x86 kmod cpio xz-utils
.PHONY: test-kernels
test-kernels: deps build
	@$(call install-missing,$(KERNEL_PACKAGES))
	TESTS="$(KERNEL_TESTS)" scripts/kernels/run.sh $(KERNELS)
