'use strict';
// Workload c (immediate chain): N deferred callbacks, each scheduling the next.
//   immediate : setImmediate chain (one loop iteration per callback)
//   promise   : microtask chain (Promise.resolve().then) - NOT a loop turn,
//               reference only for the cost of an already-resolved await
// usage: node node/immediate.js immediate|promise [N=1000000]
const C = require('../lib/common');
const mode = process.argv[2] || 'immediate';
const N = Number(process.argv[3] || 1000000);
let count = 0;
const t0 = C.now();
const done = () => {
  const s = C.now() - t0;
  C.result('wall_ms', s * 1e3, `per_s=${Math.round(N / s)} n=${N} mode=${mode}`);
};
if (mode === 'immediate') {
  const step = () => { if (++count < N) setImmediate(step); else done(); };
  setImmediate(step);
} else if (mode === 'promise') {
  (async () => { for (let i = 0; i < N; i++) { count++; await undefined; } done(); })();
} else throw new Error('mode?');
