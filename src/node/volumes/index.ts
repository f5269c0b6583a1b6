// The node agent's volumes: VolumeManager (set up / refresh / tear down a pod's volumes), the
// subPath resolver, the atomic writer and the downward-API helpers shared with container env.
export {
  VolumeManager, VolumeSetUpError, resolveSubPath, checkHostPathType, pluginDirs, PLACEHOLDER_TOKEN_PREFIX,
  configMapsResource, secretsResource, type MountedVolume, type VolumeManagerOptions,
} from './volume-manager.js';
export { writeAtomic, validatePayloadPath, DATA_DIR_NAME, type FileProjection } from './atomic-writer.js';
export { podFieldValue, containerResourceValue, formatMap, goQuote, findContainer, type PodFieldContext } from './downward-api.js';
export { mountsUnder, isMountPoint, mountTmpfs, unmount, listMounts, type MountInfo } from './mounts.js';
