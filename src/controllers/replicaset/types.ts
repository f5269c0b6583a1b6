// The few shapes of apps/v1 and core/v1 objects the ReplicaSet and Deployment controllers read.
// Structural and partial on purpose: the controllers pass everything else through untouched.
import type { KObject, ObjectMeta, OwnerReference } from '../../api/types.js';
import type { MetaLabelSelector } from '../../machinery/labels.js';

export interface PodTemplateSpec {
  metadata?: ObjectMeta;
  spec?: Record<string, unknown>;
}

export interface PodCondition { type: string; status: string; lastTransitionTime?: string; reason?: string; message?: string }
export interface ContainerStatus { name?: string; ready?: boolean; restartCount?: number }

export interface Pod extends KObject {
  metadata?: ObjectMeta;
  spec?: { nodeName?: string; [k: string]: unknown };
  status?: {
    phase?: string; conditions?: PodCondition[]; podIP?: string;
    containerStatuses?: ContainerStatus[]; initContainerStatuses?: ContainerStatus[];
    [k: string]: unknown;
  };
}

export interface ReplicaSetCondition { type: string; status: string; lastTransitionTime?: string; reason?: string; message?: string }

export interface ReplicaSet extends KObject {
  metadata?: ObjectMeta;
  spec?: { replicas?: number; minReadySeconds?: number; selector?: MetaLabelSelector; template?: PodTemplateSpec; [k: string]: unknown };
  status?: {
    replicas?: number; fullyLabeledReplicas?: number; readyReplicas?: number; availableReplicas?: number;
    observedGeneration?: number; conditions?: ReplicaSetCondition[];
  };
}

export interface DeploymentCondition {
  type: string; status: string; lastUpdateTime?: string; lastTransitionTime?: string; reason?: string; message?: string;
}

export interface DeploymentStatus {
  observedGeneration?: number; replicas?: number; updatedReplicas?: number; readyReplicas?: number;
  availableReplicas?: number; unavailableReplicas?: number; conditions?: DeploymentCondition[]; collisionCount?: number;
}

export interface Deployment extends KObject {
  metadata?: ObjectMeta;
  spec?: {
    replicas?: number; selector?: MetaLabelSelector; template?: PodTemplateSpec; minReadySeconds?: number;
    strategy?: { type?: string; rollingUpdate?: { maxSurge?: number | string; maxUnavailable?: number | string } };
    revisionHistoryLimit?: number; paused?: boolean; progressDeadlineSeconds?: number;
    [k: string]: unknown;
  };
  status?: DeploymentStatus;
}

export type { OwnerReference };
