// Stand-in for a native solc: forge calls `--version` and `--standard-json` (the input JSON on
// stdin, `--base-path` and `--allow-paths` beside it); both go to solc-js (npm `solc`).
'use strict';
const fs = require('fs');
const path = require('path');
const solc = require('solc');

const args = process.argv.slice(2);
if (args.includes('--version')) {
  // forge parses the version line; make it look like native solc's.
  const version = solc.version().replace('.Emscripten.clang', '.Linux.g++');
  console.log('solc, the solidity compiler commandline interface\nVersion: ' + version);
  process.exit(0);
}
if (!args.includes('--standard-json')) {
  console.error('solc-stdjson: only --version and --standard-json are supported, got: ' + args.join(' '));
  process.exit(2);
}
const at = args.indexOf('--base-path');
const base = at >= 0 ? args[at + 1] : process.cwd();
const findImports = (wanted) => {
  for (const dir of [base, process.cwd()]) {
    const file = path.resolve(dir, wanted);
    if (fs.existsSync(file)) return { contents: fs.readFileSync(file, 'utf8') };
  }
  return { error: 'File not found: ' + wanted };
};
process.stdout.write(solc.compile(fs.readFileSync(0, 'utf8'), { import: findImports }));
