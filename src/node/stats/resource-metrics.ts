// The wire format of the agent's `GET /metrics/resource` (served by its streaming server, reached by
// the API server through the node tunnel). It is ours, not kubelet's Summary API: the few figures
// metrics.k8s.io needs, already turned into rates, so the API server does no arithmetic.
//
//   {
//     "nodeName": "node-1",
//     "resolutionMs": 15000,
//     "node": { "usageNanoCores": 250000000, "workingSetBytes": 1073741824,
//               "timestamp": "2026-12-01T17:20:15.123Z", "windowMs": 15002 },          (absent until 2 samples)
//     "pods": [
//       { "namespace": "default", "name": "web-1", "uid": "…",
//         "containers": [ { "name": "web", "usageNanoCores": 1234567, "workingSetBytes": 4194304,
//                           "timestamp": "2026-12-01T17:20:15.120Z", "windowMs": 15001 } ] }
//     ]
//   }
//
// usageNanoCores is the CPU time used between the last two samples divided by the time between them
// (1e9 = one core busy); workingSetBytes is the latest sample; timestamp is when the latest sample was
// taken and windowMs the time between the two samples. A container appears only once it has two
// samples (as with metrics-server), so a container that has just started is missing for one period.
// The API server (src/apiserver/metrics-api.ts) declares the same shape on its side (the layering
// rule keeps src/node and src/apiserver apart).

export interface UsageSample {
  /** CPU: nanocores averaged over the window */
  usageNanoCores: number;
  /** memory working set at `timestamp`, bytes */
  workingSetBytes: number;
  /** RFC 3339 time of the latest sample */
  timestamp: string;
  /** milliseconds between the two samples */
  windowMs: number;
}

export interface ContainerUsage extends UsageSample { name: string }

export interface PodUsage { namespace: string; name: string; uid: string; containers: ContainerUsage[] }

export interface ResourceMetricsReport {
  nodeName: string;
  resolutionMs: number;
  node?: UsageSample;
  pods: PodUsage[];
}

/** What the streaming server needs to answer `GET /metrics/resource`. */
export interface ResourceMetricsSource {
  resourceMetrics(): ResourceMetricsReport;
}
