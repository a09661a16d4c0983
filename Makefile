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
	gcc libasan8 libubsan1 \
	e2fsprogs xfsprogs btrfs-progs kmod bindfs \
	debootstrap tini

.PHONY: deps build bpf addon ts test test-unit test-integration demo docs clean

# apt-get source (scripts/build-prebuilt.sh) needs dpkg-source.
DEB_PACKAGES += dpkg-dev

# apt-get install of those of the packages $(1) that are missing
define apt-install
	@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing: $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
endef

deps:
	$(call apt-install,$(DEB_PACKAGES))
	@[ -d node_modules/.bin ] && [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund --ignore-scripts
	@# The kind-style node's root (test/kit/node.ts), cached outside the tree: built when missing (~75 s).
	@scripts/node-root.sh >/dev/null

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
	$(MAKE) --no-print-directory test-replay
	$(MAKE) --no-print-directory test-asan

# The replay tests (test/replay/) again as nobody, from this root-owned checkout: the watcher's
# logic runs on recorded fixtures without root. The checkout may be a directory nobody cannot
# enter (mktemp -d makes it 0700), or sit below one: as root, each of its entries is
# bind-mounted into an open directory, in a private mount namespace that goes with the run.
# HOME and TMPDIR in a directory of their own; --configLoader runner: the default loader
# writes a bundled copy of the config beside it.
REPLAY_UID ?= 65534
.PHONY: test-replay
test-replay:
	@set -e; dir=$$(mktemp -d /tmp/ocinotify-replay.XXXXXX); trap 'rm -rf "$$dir"' EXIT; \
	chmod 0755 "$$dir"; mkdir -m 0777 "$$dir/home"; mkdir "$$dir/tree"; \
	run='exec env HOME="$$1/home" TMPDIR="$$1/home" node_modules/.bin/vitest run --configLoader runner test/replay'; \
	if [ "$$(id -u)" != 0 ]; then sh -c "$$run" sh "$$dir"; else \
		unshare --mount --propagation private sh -c 'set -e; cd "$$2"; \
			for e in * .[!.]*; do [ -e "$$e" ] || continue; \
				if [ -d "$$e" ]; then mkdir "$$1/tree/$$e"; else : > "$$1/tree/$$e"; fi; \
				mount --bind "$$e" "$$1/tree/$$e"; done; \
			cd "$$1/tree"; exec setpriv --reuid=$(REPLAY_UID) --regid=$(REPLAY_UID) --clear-groups sh -c "$$3" sh "$$1"' \
			sh "$$dir" "$(CURDIR)" "$$run"; \
	fi

# The replay fixtures (test/fixtures/replay/) recorded from real runs of the scenarios in
# test/replay/scenarios.ts: root and the real runtimes, ~1 minute. SCENARIO=name for one of them.
.PHONY: replay-fixtures
replay-fixtures: deps build
	npx vitest run --config test/replay/capture.config.ts $(if $(SCENARIO),-t ' $(SCENARIO)$$')

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
	test/integration/hostile-argv.test.ts test/integration/hostile-process.test.ts test/integration/privacy.test.ts \
	test/integration/runtime-upgrade.test.ts test/integration/filesystems.test.ts test/integration/older-kernels.test.ts \
	test/integration/watchdog.test.ts
.PHONY: test-asan
test-asan: deps bpf
	@set -e; dir=$$(mktemp -d /tmp/ocinotify-asan.XXXXXX); trap 'rm -rf "$$dir"' EXIT; \
	tar -c --exclude=./.git --exclude=./node_modules --exclude=./build --exclude=./dist --exclude=./bench/results . | tar -x -C "$$dir"; \
	ln -s "$(CURDIR)/node_modules" "$$dir/node_modules"; \
	cd "$$dir"; \
	CXXFLAGS="$(ASAN_FLAGS)" LDFLAGS="-fsanitize=address,undefined" npx node-gyp rebuild --silent; \
	nm -D build/Release/ocinotify.node | grep -q __asan_init; \
	nm -D build/Release/ocinotify-watchdog | grep -q __asan_init; \
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

# The prebuilt addons `npm pack` ships (README "Installing"): libbpf, libelf and zlib rebuilt
# -fPIC from Debian's source packages (cached in /var/cache/ocinotify-static) and linked in, so
# that the .node needs only libc and libstdc++. prebuilt: this machine's architecture;
# prebuilt-arm64: cross-built with Debian's toolchain, the BPF object against Debian's arm64
# kernel's BTF. `npm pack` builds both (scripts/prepack.sh).
NODE_ARCH := $(shell node -p process.arch 2>/dev/null)
PREBUILT := prebuilds/linux-$(NODE_ARCH)/ocinotify.node
PREBUILT_SOURCES := binding.gyp $(wildcard addon/*.cc addon/*.h bpf/*.c bpf/*.h) scripts/build-prebuilt.sh
DEB_ARM64_PACKAGES := g++-aarch64-linux-gnu qemu-system-arm qemu-user-static debootstrap e2fsprogs
.PHONY: prebuilt prebuilt-arm64 deps-arm64
prebuilt: deps $(PREBUILT)
prebuilt-arm64: deps-arm64 prebuilds/linux-arm64/ocinotify.node
prebuilds/linux-%/ocinotify.node: $(PREBUILT_SOURCES)
	scripts/build-prebuilt.sh $*
deps-arm64: deps
	$(call apt-install,$(DEB_ARM64_PACKAGES))

# The release tarball on an arm64 kernel (test/arm64/): `npm pack` from a fresh clone of HEAD
# (prepack builds both prebuilts), then Debian's arm64 kernel in qemu-system-aarch64 (TCG), a
# debootstrap root with runc, busybox and node ARM64_NODE from the npm registry
# (scripts/arm64/root.sh; built once, cached in /var/cache/ocinotify-arm64), no compiler:
# npm install, doctor, one runc container through `ocinotify watch --json`.
ARM64_NODE ?= $(firstword $(NODE_VERSIONS))
.PHONY: test-arm64
test-arm64: deps-arm64
	vm=$$(scripts/arm64/root.sh $(ARM64_NODE)) && OCINOTIFY_ARM64_VM=$$vm npx vitest run --config test/arm64/vitest.config.ts

# The package tests (test/integration/package.test.ts: npm pack, install by name without a compiler) need the prebuilt.
test: prebuilt

# The same tests on each Node line with the same prebuilt addon (Node-API: no rebuild). Node
# binaries are the npm registry's node-linux-<arch> packages, kept outside the tree in
# $(NODE_MATRIX_CACHE) so that a fresh clone does not fetch them again.
# Run in a copy of the tree without build/, so that the addon loaded is the prebuilt one;
# npm_config_nodedir: node-gyp takes the headers from the package (the build-from-source test).
NODE_MATRIX_CACHE ?= /var/cache/ocinotify-node-matrix
NODE_VERSIONS ?= 20.20.2 22.23.3 24.21.0
NODE_MATRIX_TESTS ?= test/unit test/integration/lifecycle.test.ts test/integration/modes.test.ts \
	test/integration/gate.test.ts test/integration/package.test.ts
.PHONY: test-node-matrix
test-node-matrix: deps build prebuilt
	@set -e; for v in $(NODE_VERSIONS); do \
		[ -x $(NODE_MATRIX_CACHE)/$$v/node_modules/node-linux-$(NODE_ARCH)/bin/node ] || \
			npm install --prefix $(NODE_MATRIX_CACHE)/$$v --no-save --no-audit --no-fund --silent node-linux-$(NODE_ARCH)@$$v; \
	done
	@set -e; dir=$$(mktemp -d /tmp/ocinotify-matrix.XXXXXX); trap 'rm -rf "$$dir"' EXIT; \
	tar -c --exclude=./.git --exclude=./node_modules --exclude=./build --exclude=./build-static \
		--exclude=./bench/results . | tar -x -C "$$dir"; \
	ln -s "$(CURDIR)/node_modules" "$$dir/node_modules"; \
	cd "$$dir"; \
	for v in $(NODE_VERSIONS); do \
		bin=$(NODE_MATRIX_CACHE)/$$v/node_modules/node-linux-$(NODE_ARCH)/bin; \
		echo "== node $$($$bin/node --version) with $(PREBUILT)"; \
		PATH="$$bin:$$PATH" npm_config_nodedir="$$(dirname $$bin)" \
			$$bin/node node_modules/vitest/vitest.mjs run $(NODE_MATRIX_TESTS); \
	done

# ~4 minutes; after the matrix, make test's own recipe runs the whole suite on the machine's node.
test: test-node-matrix

# The local npm registry test/integration/package.test.ts publishes the tarball to: verdaccio,
# pinned by test/registry/ (package.json, package-lock.json), installed outside the tree.
VERDACCIO_DIR := /var/cache/ocinotify-verdaccio
export OCINOTIFY_VERDACCIO := $(VERDACCIO_DIR)
.PHONY: verdaccio
verdaccio:
	@sum=$$(cat test/registry/package.json test/registry/package-lock.json | sha256sum); \
	[ "$$(cat $(VERDACCIO_DIR)/.installed 2>/dev/null)" = "$$sum" ] || { \
		echo "installing verdaccio into $(VERDACCIO_DIR)"; \
		rm -rf $(VERDACCIO_DIR) && mkdir -p $(VERDACCIO_DIR) && \
		cp test/registry/package.json test/registry/package-lock.json $(VERDACCIO_DIR)/ && \
		npm ci --prefix $(VERDACCIO_DIR) --no-audit --no-fund --silent && \
		echo "$$sum" > $(VERDACCIO_DIR)/.installed; }
test test-node-matrix: verdaccio

# The tests below on Debian's own kernels under qemu (README "Testing on other kernels"), each
# booted on this machine's / with this checkout's build; 15 to 20 minutes per kernel. KERNELS: a
# line ("6.1": its newest point release in the apt index) or an exact release ("6.1.0-47-amd64").
KERNELS ?= 6.1 6.12
KERNEL_TESTS ?= test/integration/lifecycle.test.ts test/integration/argv-forms.test.ts \
	test/integration/gate.test.ts test/integration/ordering.test.ts \
	test/integration/hostile-spec.test.ts test/integration/podman.test.ts \
	test/integration/filesystems.test.ts test/integration/modes.test.ts
KERNEL_PACKAGES := qemu-system-x86 kmod cpio xz-utils
.PHONY: test-kernels
test-kernels: deps build
	$(call apt-install,$(KERNEL_PACKAGES))
	TESTS="$(KERNEL_TESTS)" scripts/kernels/run.sh $(KERNELS)

# make test's share of test-kernels, within CI's time (~5 minutes): the oldest kernel line and
# the tests of what changes between kernels - the BPF programs loading and the mode chosen, argv
# as the BPF side copies it, fanotify's holds, deadline and ordering, a runtime binary on each
# filesystem keyed as that kernel keys it.
KERNEL_SMOKE ?= 6.1
KERNEL_SMOKE_TESTS ?= test/integration/modes.test.ts test/integration/filesystems.test.ts \
	test/integration/gate.test.ts test/integration/ordering.test.ts test/integration/argv-forms.test.ts
.PHONY: test-kernels-smoke
test-kernels-smoke: deps build
	$(call apt-install,$(KERNEL_PACKAGES))
	TESTS="$(KERNEL_SMOKE_TESTS)" scripts/kernels/run.sh $(KERNEL_SMOKE)
test: test-kernels-smoke
