// The `scaidrive` command's entry point: what must happen before any other module loads, then the CLI itself.
// An API process's V8 heap settings (src/api/heap-tuning.ts) are set here: set once the modules are loaded, the
// young generation would already have grown to V8's default maximum while loading them.
import { tuneHeapForApi } from '../api/heap-tuning';

if (process.argv.slice(2).find((arg) => !arg.startsWith('-')) === 'api') tuneHeapForApi();
await import('./main');
