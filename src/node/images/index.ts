// The node agent's image service (see image-store.ts): what the rest of the agent imports.
export { ImageStore, type ResolvedImage, type ImageSummary, type GcResult, type ImageStoreOptions, type PullPolicy, type ImageConfig, type ImportOptions } from './image-store.js';
export { ImagePullError, ImageNotFoundError, ImportError, type ImagePullReason } from './errors.js';
export { parseImageRef, InvalidReferenceError, type ImageRef } from './reference.js';
export { buildBusyboxImage, DEFAULT_BUSYBOX_REF, type BusyboxImageOptions } from './busybox.js';
export { nodeArch } from './manifest.js';
