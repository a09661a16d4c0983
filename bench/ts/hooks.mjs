// Module hooks that run .ts files in place: `./x.js` imports resolve to `./x.ts` as under
// NodeNext, and TypeScript's own transpiler strips the types. `make bench` type-checks
// the same files with tsc first.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const OPTIONS = { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, sourceMap: false };

export async function resolve(specifier, context, next) {
  try {
    return await next(specifier, context);
  } catch (err) {
    if (!specifier.endsWith('.js') || !context.parentURL?.endsWith('.ts')) throw err;
    return next(`${specifier.slice(0, -3)}.ts`, context);
  }
}

export async function load(url, context, next) {
  if (!url.startsWith('file:') || !url.endsWith('.ts')) return next(url, context);
  const fileName = fileURLToPath(url);
  const source = await readFile(fileName, 'utf8');
  const { outputText } = ts.transpileModule(source, { compilerOptions: OPTIONS, fileName });
  return { format: 'module', source: outputText, shortCircuit: true };
}
