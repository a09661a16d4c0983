// `make replay-fixtures`: the capture (test/replay/capture.ts), never part of `make test`.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: { include: ['test/replay/capture.ts'], fileParallelism: false, testTimeout: 600_000, hookTimeout: 60_000 },
});
