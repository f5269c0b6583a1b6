// What the node agent's streaming server (logs, exec, attach, port-forward) needs from the agent.
// The agent implements it over its runtime; the streaming server turns kubelet-style HTTP requests
// (arriving through the API server's tunnel) into calls on it. Errors are StatusErrors
// (NotFound for an unknown pod/container, BadRequest for e.g. a container that is not running).
import type { Duplex, Readable, Writable } from 'node:stream';

/** A process started inside a container (exec) or a view of a container's main process (attach). */
export interface ExecProcess {
  /** null when stdin was not requested */
  stdin: Writable | null;
  stdout: Readable;
  /** null for a tty (stderr is merged into stdout) */
  stderr: Readable | null;
  /** terminal size change; only for tty */
  resize?(cols: number, rows: number): void;
  /** resolves with the exit code once the process has exited and its output is drained */
  exited: Promise<number>;
  /** kill the process (idempotent) */
  kill(): void;
}

export interface LogSource {
  /** path of a CRI-format log file (`<RFC3339Nano> stdout|stderr F|P <text>` per line) */
  path: string;
  /** resolves when this container instance has exited (at once if it already has); a follow ends then */
  exited: Promise<void>;
}

export interface StreamingBackend {
  /**
   * The log file of a container (its current instance, or with previous=true the one before).
   * container undefined: the pod's only container, else BadRequest naming the choices, as kubelet says:
   * `a container name must be specified for pod web-1, choose one of: [a b]`.
   */
  logSource(namespace: string, pod: string, container: string | undefined, previous: boolean): Promise<LogSource>;
  exec(namespace: string, pod: string, container: string | undefined, command: string[], opts: { tty: boolean; stdin: boolean }): Promise<ExecProcess>;
  attach(namespace: string, pod: string, container: string | undefined, opts: { tty: boolean; stdin: boolean }): Promise<ExecProcess>;
  /** a TCP connection to the pod's port (inside the pod's network namespace) */
  portForward(namespace: string, pod: string, port: number): Promise<Duplex>;
}

/** What the streaming server hands the exec/attach protocol handler for an upgrade request. */
export interface ExecUpgradeParams {
  backend: StreamingBackend;
  namespace: string;
  pod: string;
  /** undefined only when the path names no container (the API server always names one) */
  container?: string;
  /** the argv for exec; empty for attach */
  command: string[];
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
  /** true for /attach (use backend.attach), false for /exec (backend.exec) */
  attach: boolean;
}

/** What the streaming server hands the port-forward protocol handler. */
export interface PortForwardUpgradeParams { backend: StreamingBackend; namespace: string; pod: string }
