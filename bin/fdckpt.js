#!/usr/bin/env node
// Entry point: runs the compiled CLI (npm run build produces dist/).
// First, before anything allocates: the young generation's size (see young-generation.ts).
import '../dist/cli/young-generation.js';
import { endQuietlyOnBrokenPipe } from '../dist/cli/pipes.js';
import { main } from '../dist/cli/main.js';

endQuietlyOnBrokenPipe();
process.exitCode = await main(process.argv.slice(2));
