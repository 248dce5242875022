// The page's JavaScript budget: all of dist/assets/*.js, gzipped, at most 150 KB. Printed on
// every build; the build fails beyond it.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

const BUDGET = 150 * 1024;
const dir = new URL('../dist/assets/', import.meta.url).pathname;
let raw = 0;
let gz = 0;
for (const name of readdirSync(dir).filter((n) => n.endsWith('.js'))) {
  const bytes = readFileSync(join(dir, name));
  const zipped = gzipSync(bytes, { level: 9 }).length;
  raw += bytes.length;
  gz += zipped;
  console.log(`  ${name}: ${(bytes.length / 1024).toFixed(1)} KB, ${(zipped / 1024).toFixed(1)} KB gzipped`);
}
console.log(`JavaScript: ${(raw / 1024).toFixed(1)} KB, ${(gz / 1024).toFixed(1)} KB gzipped (budget ${BUDGET / 1024} KB gzipped)`);
if (gz > BUDGET) {
  console.error('over the JavaScript budget');
  process.exit(1);
}
