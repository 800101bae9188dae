#!/usr/bin/env node
// Checks an AsyncAPI document with the official parser (@asyncapi/parser, pinned by package-lock.json):
// the specification's JSON Schema, its semantic rules and the parser's recommended rules, with every
// `$ref` resolved (relative file refs such as `./openapi.yaml#/components/schemas/Message` against the
// document's own folder).
//
//   node validate-asyncapi.mjs <asyncapi.yaml>
//
// Prints every diagnostic (severity, path in the document, line, message) and exits 1 when any is an
// error or the document cannot be parsed at all, 2 on wrong usage, 0 otherwise.

import path from 'node:path';
import parserPackage from '@asyncapi/parser';

const { Parser, fromFile, DiagnosticSeverity } = parserPackage;

const file = process.argv[2];
if (!file || process.argv.length > 3) {
  console.error('usage: node validate-asyncapi.mjs <asyncapi.yaml>');
  process.exit(2);
}

const source = path.resolve(file);
const parser = new Parser();
const { document, diagnostics } = await fromFile(parser, source).parse();

const names = {
  [DiagnosticSeverity.Error]: 'error',
  [DiagnosticSeverity.Warning]: 'warning',
  [DiagnosticSeverity.Information]: 'info',
  [DiagnosticSeverity.Hint]: 'hint',
};
let errors = 0;
for (const diagnostic of diagnostics) {
  const severity = names[diagnostic.severity] ?? `severity ${diagnostic.severity}`;
  if (diagnostic.severity === DiagnosticSeverity.Error) {
    errors += 1;
  }
  const where = (diagnostic.path ?? []).join('.') || '(document)';
  const line = diagnostic.range ? `:${diagnostic.range.start.line + 1}` : '';
  const origin = diagnostic.source && diagnostic.source !== source ? ` [${diagnostic.source}]` : '';
  console.log(`${severity}: ${where}${line}${origin}: ${diagnostic.message} (${diagnostic.code})`);
}

if (document === undefined && errors === 0) {
  console.log('error: the parser returned no document');
  errors = 1;
}
console.log(
  `${file}: ${errors} error(s), ${diagnostics.length - Math.min(errors, diagnostics.length)} other diagnostic(s)`,
);
process.exit(errors > 0 ? 1 : 0);
