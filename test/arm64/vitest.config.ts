// `make test-arm64`: the arm64 prebuilt in an arm64 VM (test/arm64/lifecycle.vm.ts), never part of `make test`.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: { include: ['test/arm64/*.vm.ts'], testTimeout: 60_000, hookTimeout: 1_800_000 },
});
