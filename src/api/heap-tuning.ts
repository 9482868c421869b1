// V8 heap settings for an API process. Its garbage is mostly 64 KiB socket pieces (request bodies, store responses)
// held outside V8's heap, while its JS heap stays small (~36 MiB of loaded code and state). With V8's adaptive
// heap growing, that small old generation got a small allocation limit, and collecting the pieces kept reaching it:
// the upload benchmark's API ran 60–110 full (mark-compact) collections per 2 GiB received, each freeing ~1.5 MiB,
// and spent up to 2.5× the CPU per GiB on its 64 MiB chunk step. A fixed growing factor of 2 brings that to ~8, and
// a young generation kept at its initial size saves ~15–20 MiB per process (the pieces' collection is triggered by
// their bytes, not by the young generation filling up, so a bigger one buys no fewer collections).
// Both flags are read as the heap resizes, so setting them at run time takes effect (test/unit/heap-tuning.test.ts);
// the CLI's entry point sets them before any other module loads (src/cli/entry.ts).
//
// The pieces themselves are collected when they die: each is a fresh 64 KiB allocation in the C heap, garbage as soon
// as its bytes are copied into a chunk buffer, but freed only when V8 next collects the small JS object that owns it —
// after tens of MiB of them (their bytes count towards V8's external-memory limit). A young-generation collection
// (a scavenge: well under a millisecond with so small a young generation) after every 8 MiB of pieces copied out
// frees them sooner: in the upload benchmark the C heap held 23–33 MiB under four parallel 8 MiB chunk PUTs instead of
// 36–46, and the API's peak RSS with sixteen parallel 64 MiB chunks was 264 MiB instead of 275–290, at the same CPU
// per GiB. V8 offers no such collection to a program except through its `gc` function (see tuneHeapForApi).
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';

export const apiHeapFlags = ['--heap-growing-percent=100', '--semi-space-growth-factor=1'];

/** Bytes of dropped body pieces after which they are collected. */
const droppedBytesPerScavenge = 8 * 1024 * 1024;

type Collect = (options: { type: 'minor' | 'major' }) => void;
let scavenge: Collect | undefined;
let droppedSinceScavenge = 0;

export function tuneHeapForApi(): void {
  for (const flag of apiHeapFlags) v8.setFlagsFromString(flag);
  // V8's `gc` function is exposed to contexts created once the flag is set (not to this process's own globals):
  // taken from a fresh context, for bodyPiecesDropped alone.
  v8.setFlagsFromString('--expose-gc');
  scavenge = runInNewContext('gc') as Collect;
}

/**
 * Counts bytes of request-body pieces just copied out (nothing refers to them any more); in a tuned API process a
 * scavenge collects them every 8 MiB (see above). Elsewhere (tests, the in-process dev stack) a no-op.
 */
export function bodyPiecesDropped(bytes: number): void {
  if (!scavenge) return;
  droppedSinceScavenge += bytes;
  if (droppedSinceScavenge < droppedBytesPerScavenge) return;
  droppedSinceScavenge = 0;
  scavenge({ type: 'minor' });
}
