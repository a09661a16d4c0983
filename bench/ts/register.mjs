// `node --import ./bench/ts/register.mjs bench/run.ts`: the benchmarks, like the tests, are
// TypeScript that reaches into src/ and test/integration/ and reads files next to its
// modules (fixtures, protos), so it runs in place rather than from a compiled copy.
import { register } from 'node:module';

register('./hooks.mjs', import.meta.url);
