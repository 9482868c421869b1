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
//
// Quiet moments compact the heap. Objects of a request that lives longer than a few young-generation collections
// (a chunk PUT's context, queries and logger, under the collections above) end up in the old generation, and with a
// growing factor of 2 their garbage piles up to twice the live heap before V8 collects it: in the upload
// benchmark the old generation went from ~45 to ~70 MiB over three rounds of 1 GiB uploads, one mark-compact in
// 90 s, and the API's peak RSS in each round rose with it (172.8 / 187.0 / 200.6 MiB). So once no request has been
// in flight for a second and the heap has grown by 8 MiB since the last such collection, the API runs a full
// collection then (tens of milliseconds on this heap, when nobody waits for it): every burst of uploads that follows
// a pause starts from a compact heap. Under continuous load there is no quiet moment and nothing changes.
import type { ServerResponse } from 'node:http';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';

export const apiHeapFlags = ['--heap-growing-percent=100', '--semi-space-growth-factor=1'];

/** Bytes of dropped body pieces after which they are collected. */
const droppedBytesPerScavenge = 8 * 1024 * 1024;

/** How long no request must have been in flight before a quiet-moment collection. */
const quietMs = 1000;
/** Heap growth since the last quiet-moment collection that makes the next one worth running. */
const growthWorthCollecting = 8 * 1024 * 1024;

/**
 * V8's `gc`: with no argument a full collection; with an options object a young-generation one (Node 20's V8 reads
 * `{ type: 'major' }` as a scavenge too, so only the argument-less call is full).
 */
type Collect = (options?: { type: 'minor' }) => void;
let collect: Collect | undefined;
let droppedSinceScavenge = 0;
let requestsInFlight = 0;
let quietTimer: NodeJS.Timeout | undefined;
let heapUsedAfterQuietCollection = 0;

export function tuneHeapForApi(): void {
  for (const flag of apiHeapFlags) v8.setFlagsFromString(flag);
  // V8's `gc` function is exposed to contexts created once the flag is set (not to this process's own globals):
  // taken from a fresh context, for bodyPiecesDropped and the quiet-moment collections alone.
  v8.setFlagsFromString('--expose-gc');
  collect = runInNewContext('gc') as Collect;
  heapUsedAfterQuietCollection = v8.getHeapStatistics().used_heap_size;
}

/**
 * Counts bytes of request-body pieces just copied out (nothing refers to them any more); in a tuned API process a
 * scavenge collects them every 8 MiB (see above). Elsewhere (tests, the in-process dev stack) a no-op.
 */
export function bodyPiecesDropped(bytes: number): void {
  if (!collect) return;
  droppedSinceScavenge += bytes;
  if (droppedSinceScavenge < droppedBytesPerScavenge) return;
  droppedSinceScavenge = 0;
  collect({ type: 'minor' });
}

/**
 * Counts a request as in flight until its response closes; in a tuned API process, a second with none in flight
 * runs a full collection if the heap has grown enough since the last one (see above). Elsewhere a no-op.
 */
export function requestInFlight(response: ServerResponse): void {
  if (!collect) return;
  requestsInFlight++;
  response.once('close', () => {
    if (--requestsInFlight > 0) return;
    if (quietTimer) quietTimer.refresh();
    else quietTimer = setTimeout(collectIfQuiet, quietMs).unref();
  });
}

function collectIfQuiet(): void {
  quietTimer = undefined;
  if (requestsInFlight > 0 || !collect) return;
  if (v8.getHeapStatistics().used_heap_size - heapUsedAfterQuietCollection < growthWorthCollecting) return;
  collect();
  heapUsedAfterQuietCollection = v8.getHeapStatistics().used_heap_size;
}
