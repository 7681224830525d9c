/** The fdckpt API: names, resource types, conditions and validation shared by controller and agent. */
export * from './names.js';
export * from './types.js';
export * from './conditions.js';
export * from './validate.js';
export * from './migration.js';
export * from './source-pod.js';
