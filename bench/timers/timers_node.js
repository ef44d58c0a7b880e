'use strict';
// Workload a (timers): N one-shot setTimeout, random delay 0..100 ms.
// NOTE node clamps 0 ms to 1 ms and keeps one list per distinct duration
// (101 lists here), so this is not a heap of 1M entries as in libuv.
// usage: node node/timers.js [N=1000000]
const C = require('../lib/common');
const N = Number(process.argv[2] || 1000000);
const rnd = C.xorshift32();
let fired = 0;
let t1;
const t0 = C.now();
const cb = () => {
  if (++fired === N) {
    const t2 = C.now();
    C.result('wall_ms', (t2 - t0) * 1e3, `sched_ms=${((t1 - t0) * 1e3).toFixed(1)} n=${N}`);
  }
};
for (let i = 0; i < N; i++) setTimeout(cb, rnd() % 101);
t1 = C.now();
