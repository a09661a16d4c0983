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
	runc busybox-static iproute2 procps util-linux

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

demo: deps build
	node examples/demo.mjs

clean:
	rm -rf $(OUT) build dist
