import { summarizeProfile } from './cpu-profile';
const s = await summarizeProfile(process.argv[2]!, undefined, 40);
console.log('total', s.totalMs, 'idle', s.idleMs);
for (const a of s.byArea.slice(0, 15)) console.log('AREA', a.name, a.ms.toFixed(0), a.pct.toFixed(1));
for (const f of s.byFunction.slice(0, 40)) console.log(f.name, f.area, f.ms.toFixed(0), f.pct.toFixed(1));
