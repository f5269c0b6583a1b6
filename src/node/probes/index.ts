// Container probes: the Prober (periodic, thresholded liveness/readiness/startup workers) and the
// one-shot handlers it runs (also usable for postStart/preStop httpGet hooks).
export { Prober, type ProbeKind, type ProbeResult, type ProbeSpec, type ProbeHandle, type ProberOptions } from './prober.js';
export {
  probeHTTP, probeTCP, probeExec, probeGRPC, runProbeHandler, resolveProbePort, ProbeError, PROBE_USER_AGENT,
  type ProbeOutcome, type ExecResult, type ExecProbeFn, type HandlerContext,
} from './handlers.js';
