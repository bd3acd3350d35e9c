/**
 * A real, throwaway Kubernetes control plane for integration tests: etcd plus kube-apiserver on
 * loopback, with generated certificates, RBAC enforced, and everything torn down by `stop()`.
 *
 * The kube-apiserver binary is built and cached by `build-apiserver.sh` next to this file; etcd
 * comes from Debian's `etcd-server` package. No controller-manager or scheduler runs, so:
 * - the `default` ServiceAccount of a namespace is not created automatically, and the
 *   `ServiceAccount` admission plugin is disabled so that pods can still be created;
 * - namespaces that are deleted stay `Terminating` (nothing finalizes them);
 * - nothing schedules or runs pods: tests set `spec.nodeName` and pod status themselves.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { waitFor } from "../../support/controlplane.ts";

/** A running etcd + kube-apiserver pair started by {@link startControlPlane}. */
export interface ControlPlane {
  /** The apiserver URL, `https://127.0.0.1:PORT`. The port stays the same across restarts. */
  readonly server: string;
  /** Path of a kubeconfig file with a client certificate in group `system:masters`. */
  readonly adminKubeconfig: string;
  /** The temporary directory holding certificates, kubeconfigs and etcd data. */
  readonly dir: string;
  /**
   * etcd's client port on 127.0.0.1 (plain HTTP, no auth): its gRPC gateway (`/v3/kv/range`,
   * `/v3/kv/compaction`, ...) lets a test compact history to force `410 Gone` on old watches.
   */
  readonly etcdClientPort: number;
  /** The directory holding `etcd.log` and `kube-apiserver.log` (`dir` unless `logDir` was given). */
  readonly logDir: string;
  /**
   * Ensures the ServiceAccount `namespace/name` exists (the namespace must exist), requests a
   * token for it through the TokenRequest API, writes a kubeconfig that authenticates with that
   * token, and returns the kubeconfig's path.
   */
  makeServiceAccountKubeconfig(namespace: string, name: string): Promise<string>;
  /**
   * Stops only the kube-apiserver process; etcd and its data stay. By default with SIGTERM (a
   * graceful shutdown: the apiserver sends HTTP/2 GOAWAY to its clients); `signal: "SIGKILL"`
   * simulates a crash (connections just drop).
   */
  stopApiServer(opts?: StopApiServerOptions): Promise<void>;
  /** Starts kube-apiserver again on the same port with the same etcd, and waits for `/readyz`. */
  startApiServer(): Promise<void>;
  /** Stops every process and removes `dir`. Safe to call more than once. */
  stop(): Promise<void>;
}

/** Options for {@link ControlPlane.stopApiServer}. */
export interface StopApiServerOptions {
  /** `SIGTERM` (default): graceful shutdown. `SIGKILL`: abrupt crash. */
  signal?: "SIGTERM" | "SIGKILL";
}

/** Options for {@link startControlPlane}. */
export interface ControlPlaneOptions {
  /** Where to write `etcd.log` and `kube-apiserver.log`; kept after `stop()`. Default: `dir`. */
  logDir?: string;
  /**
   * Serve HTTP/2 (default true, as a real cluster does). `false` adds `--disable-http2-serving`,
   * so clients fall back to HTTP/1.1: Deno 2.9's `node:http2` (which the undici inside
   * @kubernetes/client-node uses) can crash the whole process when a server sends GOAWAY, as
   * kube-apiserver does on graceful shutdown (denoland/deno#36788).
   */
  http2?: boolean;
  /** Extra kube-apiserver flags, appended after the defaults (a later flag wins). */
  apiServerArgs?: string[];
}

const HERE = new URL(".", import.meta.url);
const BUILD_SCRIPT = "tests/k8s/controlplane/build-apiserver.sh";
const READY_TIMEOUT_MS = 120_000;
const STOP_TIMEOUT_MS = 15_000;

/** Reads the pinned version from build-apiserver.sh so that the pin lives in one place. */
async function pinnedKubeVersion(): Promise<string> {
  const envVersion = Deno.env.get("KUBE_VERSION");
  if (envVersion) return envVersion;
  const script = await Deno.readTextFile(new URL("./build-apiserver.sh", HERE));
  const m = script.match(/^KUBE_VERSION="\$\{KUBE_VERSION:-(v[0-9.]+)\}"$/m);
  if (!m) throw new Error(`cannot find the pinned KUBE_VERSION in ${BUILD_SCRIPT}`);
  return m[1];
}

/** The path where build-apiserver.sh caches the binary (it may not exist yet). */
async function apiServerBinaryPath(): Promise<string> {
  const explicit = Deno.env.get("MNP_KUBE_APISERVER");
  if (explicit) return explicit;
  const home = Deno.env.get("HOME") ?? "/root";
  const cacheRoot = Deno.env.get("MNP_CACHE_DIR") ??
    `${Deno.env.get("XDG_CACHE_HOME") ?? `${home}/.cache`}/multi-networkpolicy-tc`;
  return `${cacheRoot}/kube-apiserver-${await pinnedKubeVersion()}/kube-apiserver`;
}

async function isExecutable(path: string): Promise<boolean> {
  try {
    const st = await Deno.stat(path);
    return st.isFile && st.mode !== null && (st.mode & 0o111) !== 0;
  } catch {
    return false;
  }
}

/** Finds a command on PATH (or the given fallbacks); null if absent. */
async function which(name: string, fallbacks: string[] = []): Promise<string | null> {
  const dirs = (Deno.env.get("PATH") ?? "").split(":").filter((d) => d !== "");
  for (const candidate of [...dirs.map((d) => `${d}/${name}`), ...fallbacks]) {
    if (await isExecutable(candidate)) return candidate;
  }
  return null;
}

async function etcdBinary(): Promise<string | null> {
  const explicit = Deno.env.get("MNP_ETCD");
  if (explicit) return (await isExecutable(explicit)) ? explicit : null;
  return await which("etcd", ["/usr/bin/etcd"]);
}

/**
 * Checks what {@link startControlPlane} needs: the cached kube-apiserver binary, etcd, openssl and
 * kubectl. Returns null when everything is there, else a one-line reason to skip or fail.
 */
export async function controlPlanePrerequisites(): Promise<string | null> {
  let apiserver: string;
  try {
    apiserver = await apiServerBinaryPath();
  } catch (e) {
    return `cannot locate kube-apiserver: ${e instanceof Error ? e.message : String(e)}`;
  }
  if (!(await isExecutable(apiserver))) {
    return `kube-apiserver not built (${apiserver} missing): run ${BUILD_SCRIPT}`;
  }
  if (!(await etcdBinary())) return "etcd not found: apt-get install etcd-server";
  if (!(await which("openssl"))) return "openssl not found: apt-get install openssl";
  if (!(await which("kubectl"))) return "kubectl not found on PATH";
  return null;
}

/** Runs a command to completion; throws with its output when it fails. */
async function run(cmd: string, args: string[], opts: { cwd?: string } = {}): Promise<string> {
  const out = await new Deno.Command(cmd, {
    args,
    cwd: opts.cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  if (!out.success) {
    throw new Error(
      `${cmd} ${args.join(" ")} failed (exit ${out.code}): ${dec.decode(out.stderr).trim()}`,
    );
  }
  return dec.decode(out.stdout);
}

/** Picks distinct free TCP ports on 127.0.0.1. */
export function freePorts(count: number): number[] {
  const listeners: Deno.TcpListener[] = [];
  try {
    for (let i = 0; i < count; i++) {
      listeners.push(Deno.listen({ hostname: "127.0.0.1", port: 0 }));
    }
    return listeners.map((l) => (l.addr as Deno.NetAddr).port);
  } finally {
    for (const l of listeners) l.close();
  }
}

/** Generates the CA, serving cert, admin client cert and service-account key pair in `dir`. */
async function generateCertificates(dir: string): Promise<void> {
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await run("openssl", [
    "req",
    "-x509",
    ...ec,
    "-keyout",
    "ca.key",
    "-out",
    "ca.crt",
    "-days",
    "7",
    "-subj",
    "/CN=mnp-test-ca",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ], { cwd: dir });
  await Deno.writeTextFile(
    `${dir}/serving.ext`,
    [
      "basicConstraints=critical,CA:FALSE",
      "keyUsage=critical,digitalSignature,keyEncipherment",
      "extendedKeyUsage=serverAuth",
      "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default," +
      "DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local",
      "",
    ].join("\n"),
  );
  await Deno.writeTextFile(
    `${dir}/client.ext`,
    [
      "basicConstraints=critical,CA:FALSE",
      "keyUsage=critical,digitalSignature,keyEncipherment",
      "extendedKeyUsage=clientAuth",
      "",
    ].join("\n"),
  );
  const leaf = async (name: string, subj: string, ext: string) => {
    await run("openssl", [
      "req",
      ...ec,
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.csr`,
      "-subj",
      subj,
    ], { cwd: dir });
    await run("openssl", [
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.crt",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-days",
      "7",
      "-out",
      `${name}.crt`,
      "-extfile",
      ext,
    ], { cwd: dir });
  };
  await leaf("serving", "/CN=kube-apiserver", "serving.ext");
  await leaf("admin", "/O=system:masters/CN=mnp-test-admin", "client.ext");
  await run("openssl", [
    "genpkey",
    "-algorithm",
    "RSA",
    "-pkeyopt",
    "rsa_keygen_bits:2048",
    "-out",
    "sa.key",
  ], { cwd: dir });
  await run("openssl", ["pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub"], { cwd: dir });
}

function b64(text: string): string {
  return Buffer.from(text, "utf8").toString("base64");
}

/** A kubeconfig document; JSON is valid YAML, so kubectl and client-node both read it. */
function kubeconfig(server: string, caPem: string, user: Record<string, string>): string {
  return JSON.stringify(
    {
      apiVersion: "v1",
      kind: "Config",
      clusters: [{
        name: "mnp-test",
        cluster: { server, "certificate-authority-data": b64(caPem) },
      }],
      users: [{ name: "mnp-test-user", user }],
      contexts: [{
        name: "mnp-test",
        context: { cluster: "mnp-test", user: "mnp-test-user" },
      }],
      "current-context": "mnp-test",
      preferences: {},
    },
    null,
    2,
  ) + "\n";
}

/**
 * A supervised child process. It runs under a small `sh` wrapper that appends the output to a log
 * file and kills the child when the wrapper gets SIGTERM/SIGINT/SIGHUP or when its stdin (a pipe
 * held by this Deno process) closes, so the child dies with Deno even on SIGKILL.
 */
class Supervised {
  readonly #child: Deno.ChildProcess;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  readonly #status: Promise<Deno.CommandStatus>;
  #exited = false;

  constructor(readonly name: string, binary: string, args: string[], readonly logFile: string) {
    const wrapper = [
      'log=$1; shift; exec 3<&0; "$@" >>"$log" 2>&1 </dev/null & c=$!',
      // Watchdog: when Deno goes away, TERM the child, and KILL it if it lingers (kube-apiserver
      // can hang in graceful shutdown once etcd is gone).
      '( while read -r _ <&3; do :; done; kill -TERM "$c" 2>/dev/null; sleep 5',
      '  kill -KILL "$c" 2>/dev/null ) & w=$!',
      "exec 3<&-",
      "trap 'kill -TERM \"$c\" 2>/dev/null' TERM INT HUP",
      "trap 'kill -KILL \"$c\" 2>/dev/null' USR1",
      'while :; do wait "$c"; s=$?; kill -0 "$c" 2>/dev/null || break; done',
      'kill "$w" 2>/dev/null; exit "$s"',
    ].join("\n");
    this.#child = new Deno.Command("sh", {
      args: ["-c", wrapper, "sh", logFile, binary, ...args],
      stdin: "piped",
      stdout: "null",
      stderr: "null",
    }).spawn();
    this.#stdin = this.#child.stdin.getWriter();
    this.#status = this.#child.status.then((s) => {
      this.#exited = true;
      return s;
    });
  }

  get exited(): boolean {
    return this.#exited;
  }

  get status(): Promise<Deno.CommandStatus> {
    return this.#status;
  }

  /**
   * Stops the child: SIGTERM (graceful) or SIGKILL (crash), waits up to STOP_TIMEOUT_MS, then
   * escalates to SIGKILL; always releases the pipe.
   */
  async stop(signal: "SIGTERM" | "SIGKILL" = "SIGTERM"): Promise<void> {
    if (!this.#exited) {
      try {
        // The wrapper turns SIGUSR1 into SIGKILL for the child.
        this.#child.kill(signal === "SIGKILL" ? "SIGUSR1" : "SIGTERM");
      } catch {
        // already gone
      }
    }
    const result = await withTimeout(this.#status, STOP_TIMEOUT_MS);
    // Closing stdin makes the wrapper's watchdog kill the child if it is still there.
    await this.#stdin.close().catch(() => {});
    if (result === "timeout") {
      for (const sig of ["SIGUSR1", "SIGKILL"] as const) {
        try {
          this.#child.kill(sig);
        } catch {
          // already gone
        }
        if ((await withTimeout(this.#status, 2_000)) !== "timeout") break;
      }
      await this.#status;
    }
  }

  /** Best-effort synchronous SIGTERM for signal handlers. */
  signal(): void {
    if (this.#exited) return;
    try {
      this.#child.kill("SIGTERM");
    } catch {
      // already gone
    }
  }
}

async function tail(path: string, lines: number): Promise<string> {
  try {
    const text = await Deno.readTextFile(path);
    return text.trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

/** Resolves with `p`'s value, or "timeout" after `ms`; never leaves a timer behind. */
async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | "timeout"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `probe` until it returns true; fails early if `proc` exits, or after the timeout. */
function waitForProcess(
  what: string,
  proc: Supervised,
  probe: () => Promise<boolean>,
  timeoutMs: number,
): Promise<boolean> {
  const logTail = async () => `last lines of ${proc.logFile}:\n${await tail(proc.logFile, 25)}`;
  return waitFor(what, probe, {
    timeoutMs,
    intervalMs: 250,
    abandon: async () =>
      proc.exited
        ? `${proc.name} exited (code ${
          (await proc.status).code
        }) before ${what}; ${await logTail()}`
        : null,
    detail: logTail,
  });
}

/** Control planes that are still running, for the signal handlers. */
const live = new Set<ControlPlaneImpl>();
const SIGNALS: Deno.Signal[] = ["SIGINT", "SIGTERM"];
const signalHandlers = new Map<Deno.Signal, () => void>();

function onSignal(sig: Deno.Signal): void {
  for (const cp of live) cp.signalAll();
  const planes = [...live];
  Promise.allSettled(planes.map((cp) => cp.stop())).finally(() => {
    Deno.exit(sig === "SIGINT" ? 130 : 143);
  });
}

function register(cp: ControlPlaneImpl): void {
  live.add(cp);
  if (signalHandlers.size > 0) return;
  for (const sig of SIGNALS) {
    const handler = () => onSignal(sig);
    try {
      Deno.addSignalListener(sig, handler);
      signalHandlers.set(sig, handler);
    } catch {
      // signal listeners are not available (e.g. not permitted); rely on the stdin watchdog
    }
  }
}

function unregister(cp: ControlPlaneImpl): void {
  live.delete(cp);
  if (live.size > 0) return;
  for (const [sig, handler] of signalHandlers) Deno.removeSignalListener(sig, handler);
  signalHandlers.clear();
}

class ControlPlaneImpl implements ControlPlane {
  readonly server: string;
  readonly adminKubeconfig: string;
  #etcd: Supervised | null = null;
  #apiserver: Supervised | null = null;
  #stopped = false;
  #saCounter = 0;

  constructor(
    readonly dir: string,
    readonly logDir: string,
    readonly apiserverBinary: string,
    readonly etcdBinary: string,
    readonly port: number,
    readonly etcdClientPort: number,
    readonly etcdPeerPort: number,
    readonly extraApiServerArgs: string[],
  ) {
    this.server = `https://127.0.0.1:${port}`;
    this.adminKubeconfig = `${dir}/admin.kubeconfig`;
  }

  async startEtcd(): Promise<void> {
    const client = `http://127.0.0.1:${this.etcdClientPort}`;
    const peer = `http://127.0.0.1:${this.etcdPeerPort}`;
    this.#etcd = new Supervised("etcd", this.etcdBinary, [
      "--name=default",
      `--data-dir=${this.dir}/etcd`,
      `--listen-client-urls=${client}`,
      `--advertise-client-urls=${client}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=default=${peer}`,
      "--initial-cluster-state=new",
      "--logger=zap",
      "--log-outputs=stderr",
      "--log-level=warn",
    ], `${this.logDir}/etcd.log`);
    await waitForProcess("etcd /health", this.#etcd, async () => {
      const res = await fetch(`${client}/health`);
      const body = await res.text();
      return res.ok && body.includes('"health":"true"');
    }, READY_TIMEOUT_MS);
  }

  apiServerArgs(): string[] {
    const d = this.dir;
    return [
      "--bind-address=127.0.0.1",
      "--advertise-address=127.0.0.1",
      `--secure-port=${this.port}`,
      `--cert-dir=${d}/apiserver-certs`,
      `--tls-cert-file=${d}/serving.crt`,
      `--tls-private-key-file=${d}/serving.key`,
      `--client-ca-file=${d}/ca.crt`,
      `--etcd-servers=http://127.0.0.1:${this.etcdClientPort}`,
      "--authorization-mode=Node,RBAC",
      "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
      `--service-account-key-file=${d}/sa.pub`,
      `--service-account-signing-key-file=${d}/sa.key`,
      "--service-cluster-ip-range=10.96.0.0/16",
      // No controller-manager creates `default` ServiceAccounts, which this plugin would require.
      "--disable-admission-plugins=ServiceAccount",
      // The endpoint reconciler refuses a loopback advertise address; nothing needs its Endpoints.
      "--endpoint-reconciler-type=none",
      "--allow-privileged=true",
      "--profiling=false",
      "--permit-address-sharing",
      "--v=1",
      ...this.extraApiServerArgs,
    ];
  }

  async startApiServer(): Promise<void> {
    if (this.#stopped) throw new Error("control plane already stopped");
    if (this.#apiserver && !this.#apiserver.exited) {
      throw new Error("kube-apiserver is already running");
    }
    if (!this.#etcd || this.#etcd.exited) throw new Error("etcd is not running");
    const proc = new Supervised(
      "kube-apiserver",
      this.apiserverBinary,
      this.apiServerArgs(),
      `${this.logDir}/kube-apiserver.log`,
    );
    this.#apiserver = proc;
    const [ca, cert, key] = await Promise.all([
      Deno.readTextFile(`${this.dir}/ca.crt`),
      Deno.readTextFile(`${this.dir}/admin.crt`),
      Deno.readTextFile(`${this.dir}/admin.key`),
    ]);
    const client = Deno.createHttpClient({ caCerts: [ca], cert, key });
    try {
      await waitForProcess("kube-apiserver /readyz", proc, async () => {
        const res = await fetch(`${this.server}/readyz`, { client });
        const body = await res.text();
        return res.status === 200 && body.trim() === "ok";
      }, READY_TIMEOUT_MS);
    } finally {
      client.close();
    }
  }

  async stopApiServer(opts: StopApiServerOptions = {}): Promise<void> {
    const proc = this.#apiserver;
    this.#apiserver = null;
    if (proc) await proc.stop(opts.signal ?? "SIGTERM");
  }

  async makeServiceAccountKubeconfig(namespace: string, name: string): Promise<string> {
    const kc = ["--kubeconfig", this.adminKubeconfig];
    try {
      await run("kubectl", [...kc, "-n", namespace, "create", "serviceaccount", name]);
    } catch (e) {
      if (!(e instanceof Error && /AlreadyExists|already exists/.test(e.message))) throw e;
    }
    const token = (await run("kubectl", [
      ...kc,
      "-n",
      namespace,
      "create",
      "token",
      name,
      "--duration=2h",
    ])).trim();
    if (!token) throw new Error(`empty token for ServiceAccount ${namespace}/${name}`);
    const ca = await Deno.readTextFile(`${this.dir}/ca.crt`);
    const path = `${this.dir}/sa-${namespace}-${name}-${++this.#saCounter}.kubeconfig`;
    await Deno.writeTextFile(path, kubeconfig(this.server, ca, { token }), { mode: 0o600 });
    return path;
  }

  /** Synchronous best-effort SIGTERM to every process (for signal handlers). */
  signalAll(): void {
    this.#apiserver?.signal();
    this.#etcd?.signal();
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    try {
      await this.stopApiServer();
    } finally {
      try {
        const etcd = this.#etcd;
        this.#etcd = null;
        if (etcd) await etcd.stop();
      } finally {
        unregister(this);
        await Deno.remove(this.dir, { recursive: true }).catch(() => {});
      }
    }
  }
}

const TEMP_PREFIX = "mnp-controlplane-";
const OWNER_FILE = "owner.pid";

/**
 * Removes temp dirs left by control planes whose Deno process died without `stop()` (e.g. killed
 * with SIGKILL; the wrappers then kill etcd and the apiserver, but nobody removes the directory).
 */
async function sweepStaleDirs(): Promise<void> {
  const tmp = Deno.env.get("TMPDIR") || "/tmp";
  try {
    for await (const entry of Deno.readDir(tmp)) {
      if (!entry.isDirectory || !entry.name.startsWith(TEMP_PREFIX)) continue;
      const dir = `${tmp}/${entry.name}`;
      let owner: number;
      try {
        owner = Number((await Deno.readTextFile(`${dir}/${OWNER_FILE}`)).trim());
      } catch {
        continue; // not ours, or still being set up
      }
      if (!Number.isInteger(owner) || owner <= 0 || owner === Deno.pid) continue;
      const alive = await Deno.stat(`/proc/${owner}`).then(() => true, () => false);
      if (!alive) await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  } catch {
    // best effort
  }
}

/**
 * Starts etcd and kube-apiserver on free 127.0.0.1 ports in a fresh temporary directory and
 * waits until `/readyz` answers `ok`. Throws (after cleaning up) when a prerequisite is missing or
 * a process does not come up; the error carries the last lines of the failing process's log.
 * Callers must `await cp.stop()` in a `finally`.
 */
export async function startControlPlane(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const missing = await controlPlanePrerequisites();
  if (missing) throw new Error(missing);
  const apiserver = await apiServerBinaryPath();
  const etcd = await etcdBinary();
  if (!etcd) throw new Error("etcd not found");

  await sweepStaleDirs();
  const dir = await Deno.makeTempDir({ prefix: TEMP_PREFIX });
  await Deno.writeTextFile(`${dir}/${OWNER_FILE}`, `${Deno.pid}\n`);
  const logDir = opts.logDir ?? dir;
  await Deno.mkdir(logDir, { recursive: true });
  const [port, etcdClientPort, etcdPeerPort] = freePorts(3);
  const cp = new ControlPlaneImpl(
    dir,
    logDir,
    apiserver,
    etcd,
    port,
    etcdClientPort,
    etcdPeerPort,
    [...(opts.http2 === false ? ["--disable-http2-serving"] : []), ...(opts.apiServerArgs ?? [])],
  );
  register(cp);
  try {
    await generateCertificates(dir);
    const [ca, cert, key] = await Promise.all([
      Deno.readTextFile(`${dir}/ca.crt`),
      Deno.readTextFile(`${dir}/admin.crt`),
      Deno.readTextFile(`${dir}/admin.key`),
    ]);
    await Deno.writeTextFile(
      cp.adminKubeconfig,
      kubeconfig(cp.server, ca, {
        "client-certificate-data": b64(cert),
        "client-key-data": b64(key),
      }),
      { mode: 0o600 },
    );
    await cp.startEtcd();
    await cp.startApiServer();
    return cp;
  } catch (e) {
    await cp.stop();
    throw e;
  }
}
