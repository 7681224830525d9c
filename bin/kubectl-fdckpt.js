#!/usr/bin/env node
// The kubectl plugin: on PATH as kubectl-fdckpt, it is `kubectl fdckpt` (npm run build produces dist/).
import { endQuietlyOnBrokenPipe } from '../dist/cli/pipes.js';
import { pluginMain } from '../dist/cli/kubectl/plugin.js';

endQuietlyOnBrokenPipe();
process.exitCode = await pluginMain(process.argv.slice(2));
