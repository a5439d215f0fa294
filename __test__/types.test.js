'use strict';
// The faces' type declarations, as TypeScript users meet them: small typed programs for each face (in
// __test__/types/) compile with `tsc --noEmit --strict`, resolving `ferrows`, `ferrows/ws`, `ferrows/websocket` and
// `ferrows/node-websocket-server` through package.json's `exports` (their `types` conditions). Each program also
// holds a misuse marked @ts-expect-error, so declarations that degraded to `any` fail the test too.
const test = require('ava');
const { execFile } = require('child_process');
const path = require('path');

const root = path.join(__dirname, '..');

test('typed programs for every face compile with tsc --strict', async (t) => {
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const result = await new Promise((resolve) => {
    execFile(process.execPath, [tsc, '-p', path.join(__dirname, 'types'), '--listFiles'], { cwd: root, timeout: 55000 },
      (error, stdout, stderr) => resolve({ code: error ? error.code : 0, stdout, stderr }));
  });
  t.is(result.code, 0, result.stdout + result.stderr);
  for (const face of ['index.d.ts', 'lib/faces/ws.d.ts', 'lib/faces/websocket.d.ts', 'lib/faces/node-websocket-server.d.ts']) {
    t.true(result.stdout.includes(path.join(root, face)), `${face} was the declaration used`);
  }
});
