// The client library: REST client, informers and listers, work queue, leader election, events.
export * from './clock.js';
export * from './rate-limiter.js';
export * from './transport.js';
export * from './kubeconfig.js';
export * from './watch-decoder.js';
export * from './rest-client.js';
export * from './label-selector.js';
export * from './indexer.js';
export * from './informer.js';
export * from './workqueue.js';
export * from './leader-election.js';
export * from './event-recorder.js';
