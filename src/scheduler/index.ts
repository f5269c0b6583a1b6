// The scheduler: framework, plugins, queue, cache and the Scheduler component.
export * from './framework.js';
export * from './node-info.js';
export * from './cache.js';
export * from './queue.js';
export * from './registry.js';
export * from './schedule-algorithm.js';
export * from './scheduler.js';
