// V8 heap settings for an API process. Its garbage is mostly 64 KiB socket pieces (request bodies, store responses)
// held outside V8's heap, while its JS heap stays small (~36 MiB of loaded code and state). With V8's adaptive
// heap growing, that small old generation got a small allocation limit, and collecting the pieces kept reaching it:
// the upload benchmark's API ran 60–110 full (mark-compact) collections per 2 GiB received, each freeing ~1.5 MiB,
// and spent up to 2.5× the CPU per GiB on its 64 MiB chunk step. A fixed growing factor of 2 brings that to ~8, and
// a young generation kept at its initial size saves ~15–20 MiB per process (the pieces' collection is triggered by
// their bytes, not by the young generation filling up, so a bigger one buys no fewer collections).
// Both flags are read as the heap resizes, so setting them at run time takes effect (test/unit/heap-tuning.test.ts);
// the CLI's entry point sets them before any other module loads (src/cli/entry.ts).
import v8 from 'node:v8';

export const apiHeapFlags = ['--heap-growing-percent=100', '--semi-space-growth-factor=1'];

export function tuneHeapForApi(): void {
  for (const flag of apiHeapFlags) v8.setFlagsFromString(flag);
}
