/**
 * The checkpoint image: a versioned, self-describing, checksummed record
 * stream (docs/image-format.md). Reading is strict: every malformed image
 * is an ImageFormatError naming the byte offset and record.
 */
export {
  decodeCheckpoint,
  readImage,
  readImageFile,
  type DecodedImage,
  type ReadImageOptions,
} from './decode.js';
export { encodeCheckpoint, imageChunks, writeImage, type WrittenImage } from './encode.js';
export { ImageDigestError, ImageFormatError, type ImageLocation } from './errors.js';
export { FORMAT_VERSION } from './format.js';
export { flagWords } from './flags.js';
export {
  renderInspectTable,
  toInspectJson,
  type InspectFd,
  type InspectFile,
  type InspectJson,
  type InspectProcess,
} from './inspect.js';
export {
  diffCheckpoints,
  diffToJson,
  renderDiff,
  type DiffField,
  type DiffValue,
  type Difference,
} from './diff.js';
