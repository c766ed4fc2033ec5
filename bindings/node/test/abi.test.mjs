// include/leeward.h is the one source: the codes, the version and the struct layouts
// that this binding declares by hand (lib/errors.js, package.json, lib/native.js)
// must match it. Needs the checkout's header; the layout check also needs gcc.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const { codes } = require('../lib/errors');
const native = require('../lib/native');
const pkg = require('../package.json');

const here = path.dirname(fileURLToPath(import.meta.url));
const includeDir = path.resolve(here, '..', '..', '..', 'include');
const headerPath = path.join(includeDir, 'leeward.h');
const header = fs.existsSync(headerPath) ? fs.readFileSync(headerPath, 'utf8') : null;
const noHeader = header === null ? `${headerPath} not found (not a checkout)` : false;

let noLibrary = false;
try {
  native.load();
} catch (err) {
  noLibrary = `libleeward cannot be loaded: ${err.message}`;
}
let noCompiler = false;
try {
  execFileSync('gcc', ['--version'], { stdio: 'ignore' });
} catch {
  noCompiler = 'gcc not installed';
}

test('error codes are the header\'s LEEWARD_E_*', { skip: noHeader }, () => {
  const inHeader = {};
  for (const m of header.matchAll(/^#define LEEWARD_E_([A-Z0-9_]+) "(E\d{4})"/gm)) inHeader[m[1]] = m[2];
  assert.ok(Object.keys(inHeader).length > 0, 'no LEEWARD_E_* in the header');
  assert.deepEqual({ ...codes }, inHeader);
  assert.equal(codes.CONNECTION_CLOSED, 'E1006'); // what a closed client says, in every binding
});

test('package version is the header\'s LEEWARD_VERSION', { skip: noHeader }, () => {
  const m = header.match(/^#define LEEWARD_VERSION "([^"]+)"/m);
  assert.ok(m, 'no LEEWARD_VERSION in the header');
  assert.equal(pkg.version, m[1]);
});

/** {LeewardMount: ['host', 'sandbox', 'read_only'], ...} from the header's typedefs. */
function headerStructs() {
  const structs = {};
  for (const m of header.matchAll(/typedef struct \{([^}]*)\} (\w+);/g)) {
    const body = m[1].replace(/\/\*[\s\S]*?\*\//g, '');
    structs[m[2]] = [...body.matchAll(/(\w+)\s*;/g)].map((f) => f[1]);
  }
  return structs;
}

test('hand-declared struct layouts match the compiled header', { skip: noHeader || noLibrary || noCompiler }, () => {
  const { koffi, types } = native.load();
  const declared = { LeewardMount: types.Mount, LeewardOptions: types.Options, LeewardResult: types.Result };
  const structs = headerStructs();
  assert.deepEqual(Object.keys(structs).sort(), Object.keys(declared).sort());

  // What the C compiler makes of the header: size, and each field's offset and size.
  const lines = ['#include <stddef.h>', '#include <stdio.h>', '#include "leeward.h"', 'int main(void) {'];
  for (const [name, fields] of Object.entries(structs)) {
    lines.push(`  printf("${name} %zu\\n", sizeof(${name}));`);
    for (const f of fields) {
      lines.push(`  printf("${name}.${f} %zu %zu\\n", offsetof(${name}, ${f}), sizeof(((${name} *)0)->${f}));`);
    }
  }
  lines.push('  return 0;', '}');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'leeward-abi-'));
  try {
    const source = path.join(dir, 'layout.c');
    const program = path.join(dir, 'layout');
    fs.writeFileSync(source, lines.join('\n'));
    execFileSync('gcc', ['-std=c99', '-Wall', '-Werror', `-I${includeDir}`, '-o', program, source]);
    const compiled = execFileSync(program, { encoding: 'utf8' }).trim().split('\n');

    const expected = [];
    for (const [name, type] of Object.entries(declared)) {
      const info = koffi.type(type);
      expected.push(`${name} ${koffi.sizeof(type)}`);
      for (const member of Object.values(info.members)) {
        expected.push(`${name}.${member.name} ${member.offset} ${koffi.sizeof(member.type)}`);
      }
    }
    assert.deepEqual(expected.sort(), compiled.sort());
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
