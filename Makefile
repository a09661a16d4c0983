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

.PHONY: deps build bpf addon ts test test-unit test-integration demo clean

deps:
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing: $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
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
