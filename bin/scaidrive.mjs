#!/usr/bin/env node
// The `scaidrive` CLI: runs the TypeScript sources through tsx (no build step).
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/entry.ts');
