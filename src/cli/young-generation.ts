/**
 * Keeps V8's young generation at its starting size (1 MB semi-spaces) for the life of
 * the process. V8 doubles the semi-spaces whenever most of the young objects survive a
 * scavenge, and a capture or a restore keeps every record it makes until the image is
 * written or the plan injected: the semi-spaces grew to 16 MB (new space 33.6 MB at 10k
 * fds), which was a third of the peak RSS of a 19k-fd capture (103 MB; 84 MB kept at
 * 1 MB, against 40-43 MB for `node -e 0`) for no time gained: survivors are promoted
 * to the old space after two scavenges either way (bench/RESULTS.md, 2026-12-04).
 *
 * It must run before the CLI allocates anything, so bin/fdckpt.js imports it first;
 * changing the flag later still applies, the semi-spaces only stop growing from there.
 */
import { setFlagsFromString } from 'node:v8';

setFlagsFromString('--semi-space-growth-factor=1');
