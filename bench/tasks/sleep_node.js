'use strict';
// Workload d (task sleep fan-out): N concurrent async tasks, each awaits a
// 10 ms setTimeout promise then finishes. usage: node node/sleep.js [N=100000] [ms=10]
const C = require('../lib/common');
const N = Number(process.argv[2] || 100000);
const MS = Number(process.argv[3] || 10);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let finished = 0;
async function task() { await sleep(MS); finished++; }
const t0 = C.now();
const all = [];
for (let i = 0; i < N; i++) all.push(task());
const t1 = C.now();
Promise.all(all).then(() => {
  const t2 = C.now();
  if (finished !== N) throw new Error('finished ' + finished);
  C.result('wall_ms', (t2 - t0) * 1e3, `spawn_ms=${((t1 - t0) * 1e3).toFixed(1)} n=${N} sleep_ms=${MS}`);
});
