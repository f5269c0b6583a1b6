// The shapes of autoscaling/v2 HorizontalPodAutoscalers, autoscaling/v1 Scales and
// metrics.k8s.io/v1beta1 PodMetrics that the HPA controller reads and writes. Structural and partial
// on purpose: fields the controller does not use pass through untouched.
import type { KObject, ObjectMeta } from '../../api/types.js';

export interface CrossVersionObjectReference { kind: string; name: string; apiVersion?: string }

export interface MetricTarget {
  type: 'Utilization' | 'Value' | 'AverageValue' | string;
  value?: string | number;
  averageValue?: string | number;
  averageUtilization?: number;
}

export interface ResourceMetricSource { name: string; target: MetricTarget }

export interface MetricSpec {
  type: 'Resource' | 'ContainerResource' | 'Pods' | 'Object' | 'External' | string;
  resource?: ResourceMetricSource;
  containerResource?: ResourceMetricSource & { container: string };
  [k: string]: unknown;
}

export interface MetricValueStatus { value?: string; averageValue?: string; averageUtilization?: number }

export interface MetricStatus {
  type: string;
  resource?: { name: string; current: MetricValueStatus };
  containerResource?: { name: string; container: string; current: MetricValueStatus };
  [k: string]: unknown;
}

export interface HPAScalingPolicy { type: 'Pods' | 'Percent' | string; value: number; periodSeconds: number }

export interface HPAScalingRules {
  stabilizationWindowSeconds?: number;
  selectPolicy?: 'Max' | 'Min' | 'Disabled' | string;
  policies?: HPAScalingPolicy[];
}

export interface HorizontalPodAutoscalerBehavior { scaleUp?: HPAScalingRules; scaleDown?: HPAScalingRules }

export interface HorizontalPodAutoscalerCondition {
  type: 'AbleToScale' | 'ScalingActive' | 'ScalingLimited' | string;
  status: 'True' | 'False' | 'Unknown' | string;
  lastTransitionTime?: string;
  reason?: string;
  message?: string;
}

export interface HorizontalPodAutoscalerStatus {
  observedGeneration?: number;
  lastScaleTime?: string;
  currentReplicas?: number;
  desiredReplicas: number;
  currentMetrics?: MetricStatus[];
  conditions?: HorizontalPodAutoscalerCondition[];
}

export interface HorizontalPodAutoscaler extends KObject {
  metadata?: ObjectMeta;
  spec?: {
    scaleTargetRef: CrossVersionObjectReference;
    minReplicas?: number;
    maxReplicas: number;
    metrics?: MetricSpec[];
    behavior?: HorizontalPodAutoscalerBehavior;
  };
  status?: HorizontalPodAutoscalerStatus;
}

/** autoscaling/v1 Scale, what every `/scale` subresource serves */
export interface Scale extends KObject {
  metadata?: ObjectMeta;
  spec?: { replicas?: number };
  status?: { replicas?: number; selector?: string };
}

/** metrics.k8s.io/v1beta1 PodMetrics */
export interface PodMetrics extends KObject {
  metadata?: ObjectMeta;
  timestamp?: string;
  /** a Go duration string, e.g. "30s" or "10.5s" */
  window?: string;
  containers?: { name: string; usage?: Record<string, string> }[];
}

/** What the controller reads of a pod. */
export interface HPAPod extends KObject {
  metadata?: ObjectMeta;
  spec?: {
    containers?: HPAContainer[];
    initContainers?: (HPAContainer & { restartPolicy?: string })[];
    [k: string]: unknown;
  };
  status?: {
    phase?: string;
    startTime?: string;
    conditions?: { type: string; status: string; lastTransitionTime?: string }[];
    [k: string]: unknown;
  };
}

export interface HPAContainer { name: string; resources?: { requests?: Record<string, string>; limits?: Record<string, string> }; [k: string]: unknown }
