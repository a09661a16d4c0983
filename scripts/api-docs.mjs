// Writes the API reference (docs/api.md) from the declarations src/index.ts exports, with
// their doc comments, through the TypeScript compiler: `make docs`.
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ENTRY = fileURLToPath(new URL('../src/index.ts', import.meta.url));
const program = ts.createProgram([ENTRY], { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, strict: true });
const checker = program.getTypeChecker();
const FLAGS = ts.TypeFormatFlags.NoTruncation | ts.TypeFormatFlags.UseSingleQuotesForStringLiteralType;

const doc = (symbol) => ts.displayPartsToString(symbol.getDocumentationComment(checker)).trim();
const oneLine = (text) => text.replace(/\s*\n\s*/g, ' ');
const cell = (text) => oneLine(text).replace(/\|/g, '\\|');

function kindOf(decl) {
  if (ts.isClassDeclaration(decl)) return 'class';
  if (ts.isInterfaceDeclaration(decl)) return 'interface';
  if (ts.isTypeAliasDeclaration(decl)) return 'type';
  if (ts.isFunctionDeclaration(decl)) return 'function';
  return 'const';
}

/** Overloads tagged @internal are for the tests (stripInternal drops them from the .d.ts too). */
const isPublic = (sig) => !sig.getJsDocTags().some((t) => t.name === 'internal');

/** The declaration's source text without bodies and comments: what a reader of the .d.ts sees. */
function signature(symbol, decl) {
  if (ts.isFunctionDeclaration(decl))
    return checker.getSignaturesOfType(checker.getTypeOfSymbol(symbol), ts.SignatureKind.Call)
      .filter(isPublic)
      .map((s) => `function ${symbol.name}${checker.signatureToString(s, undefined, FLAGS)}`)
      .join('\n');
  if (ts.isTypeAliasDeclaration(decl)) return `type ${symbol.name} = ${oneLine(decl.type.getText())}`;
  if (ts.isVariableDeclaration(decl)) return `const ${symbol.name}: ${checker.typeToString(checker.getTypeOfSymbol(symbol), undefined, FLAGS)}`;
  return null;
}

function members(symbol, decl) {
  const rows = [];
  const type = ts.isClassDeclaration(decl) ? checker.getTypeOfSymbol(symbol) : undefined;
  if (type) {
    for (const s of type.getConstructSignatures().filter(isPublic))
      rows.push([`new ${symbol.name}${checker.signatureToString(s, undefined, FLAGS)}`, ts.displayPartsToString(s.getDocumentationComment(checker))]);
  }
  const instance = checker.getDeclaredTypeOfSymbol(symbol);
  for (const m of checker.getPropertiesOfType(instance)) {
    const md = m.valueDeclaration ?? m.declarations?.[0];
    if (!md || md.getSourceFile().isDeclarationFile) continue; // inherited from node's types
    const mods = ts.getCombinedModifierFlags(md);
    if (mods & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected) || m.name.startsWith('#')) continue;
    const t = checker.getTypeOfSymbolAtLocation(m, md);
    const name = m.name.replace(/^__@(\w+)@\d+$/, '[Symbol.$1]'); // well-known symbols' internal names
    const optional = m.flags & ts.SymbolFlags.Optional ? '?' : '';
    const text = ts.isMethodDeclaration(md) || ts.isMethodSignature(md)
      ? `${name}${t.getCallSignatures().map((s) => checker.signatureToString(s, undefined, FLAGS)).join(' / ')}`
      : `${name}${optional}: ${checker.typeToString(t, undefined, FLAGS)}`;
    rows.push([text, doc(m)]);
  }
  if (rows.length === 0) return '';
  return ['| member | |', '|---|---|', ...rows.map(([a, b]) => `| \`${cell(a)}\` | ${cell(b)} |`)].join('\n');
}

const out = [
  '# API reference',
  '',
  'Generated from the declarations `src/index.ts` exports by `scripts/api-docs.mjs` (`make docs`);',
  'do not edit. The README explains the API with examples; this lists every export.',
  '',
];
const entry = checker.getSymbolAtLocation(program.getSourceFile(ENTRY));
const exports = checker.getExportsOfModule(entry).sort((a, b) => a.name.localeCompare(b.name));
for (const exported of exports) {
  const symbol = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
  const decl = symbol.valueDeclaration ?? symbol.declarations?.[0];
  if (!decl) continue;
  const file = decl.getSourceFile().fileName.replace(/^.*\/src\//, 'src/');
  out.push(`## ${exported.name}`, '', `${kindOf(decl)} · [${file}](../${file})`, '');
  const text = doc(symbol);
  if (text) out.push(text, '');
  const sig = signature(symbol, decl);
  if (sig) out.push('```ts', sig, '```', '');
  if (ts.isClassDeclaration(decl) || ts.isInterfaceDeclaration(decl)) {
    const table = members(symbol, decl);
    if (table) out.push(table, '');
  }
}
process.stdout.write(out.join('\n'));
