// Errors the image service reports to the node agent. `reason` is the word the kubelet puts in a
// container's waiting state (and in events): ErrImagePull (the agent turns repeats into
// ImagePullBackOff), ErrImageNeverPull, InvalidImageName. Messages follow the kubelet/containerd
// wording, e.g. `failed to pull and unpack image "docker.io/library/x:1": failed to resolve
// reference "docker.io/library/x:1": docker.io/library/x:1: not found`.

export type ImagePullReason = 'ErrImagePull' | 'ErrImageNeverPull' | 'InvalidImageName';

export class ImagePullError extends Error {
  constructor(readonly reason: ImagePullReason, message: string, readonly image: string) {
    super(message);
    this.name = 'ImagePullError';
  }
}

/** remove() of a name or ID the store does not have. */
export class ImageNotFoundError extends Error {
  constructor(readonly image: string) {
    super(`image "${image}": not found`);
    this.name = 'ImageNotFoundError';
  }
}

/** A bad archive given to importArchive(). */
export class ImportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ImportError';
  }
}
