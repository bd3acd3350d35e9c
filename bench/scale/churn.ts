/**
 * The churn the scale harness applies: a deterministic sequence of API writes
 * (label flips on remote pods, pods created and deleted on the agent's node
 * and elsewhere, policy edits, namespace label flips), each with the token
 * that recognises its effect in what the sink receives and the interfaces it
 * is expected to change. Pure: it never talks to the API server, and assumes
 * each write it planned succeeded.
 *
 * Tokens rely on the cluster's shape (./cluster.ts): allowed ports at or above
 * `ANCHOR_PORT_MIN` come from anchor policies only, so
 * - a pod's address entering or leaving an anchor's peers shows as that
 *   address appearing in (`enter`), or disappearing from, the allow entries on
 *   those ports (`ips`);
 * - a policy edit moves the anchor's rule-0 port to a port never used before
 *   in the run, which then appears (`port`);
 * - a local pod's interface appears (`added`) or is removed (`removed`).
 */
import { forApi, type Manifest, pod } from "../../tests/support/manifests.ts";
import {
  anchorIngress,
  type ChurnBasis,
  EDIT_PORT_COUNT,
  EDIT_PORT_MIN,
  type LocalNamespace,
  pciAddress,
  podIp,
  remoteNode,
  rng,
} from "./cluster.ts";

/** The kinds of change, in the order tables list them. */
export const CHURN_KINDS = [
  "pod-label",
  "policy-edit",
  "namespace-label",
  "remote-create",
  "remote-delete",
  "local-create",
  "local-delete",
] as const;

/** One kind of change. */
export type ChurnKind = typeof CHURN_KINDS[number];

/** How a change's effect is recognised in the changes the sink receives. */
export type Token =
  /** One of these addresses enters (or, `enter` false, leaves) the allow entries on anchor ports. */
  | { kind: "ips"; ips: string[]; enter: boolean }
  /** This anchor port becomes allowed. */
  | { kind: "port"; port: number }
  /** An interface whose key starts with this prefix (`namespace/pod/`) is handed over. */
  | { kind: "added"; prefix: string }
  /** An interface whose key starts with this prefix is removed. */
  | { kind: "removed"; prefix: string };

/** One API write. */
export interface ApiRequest {
  method: "GET" | "POST" | "PATCH" | "DELETE";
  path: string;
  /** JSON body; a PATCH is a JSON merge patch. */
  body?: unknown;
}

/** One planned change. */
export interface ChurnOp {
  seq: number;
  kind: ChurnKind;
  /** The object it writes (`Pod ns/name`, ...). */
  object: string;
  /** What it writes, for logs (the object and the change). */
  target: string;
  request: ApiRequest;
  token: Token;
  /** The `interfaceKey()`s whose rules it changes. */
  expected: string[];
}

/** Out of every 40 changes, how many of each kind (10 per second: 4 s). */
const MIX: Record<ChurnKind, number> = {
  "pod-label": 12,
  "policy-edit": 8,
  "namespace-label": 6,
  "remote-create": 4,
  "remote-delete": 4,
  "local-create": 3,
  "local-delete": 3,
};
/** A delete waits until this many pods of its kind live, so it never races their create. */
const DELETE_AFTER = 3;
/** Churn pods take addresses from here up (within 10.64.0.0/10, above the cluster's pods). */
const CHURN_IP_BASE = 4_000_000;

const CNI = "/apis/k8s.cni.cncf.io/v1beta2";

interface LivePod {
  namespace: LocalNamespace;
  name: string;
  ip: string;
}

/** The churn as an endless, deterministic sequence of changes. */
export class ChurnPlan {
  readonly #basis: ChurnBasis;
  readonly #pattern: ChurnKind[];
  readonly #flipOrder: number[];
  readonly #roles: ("client" | "idle")[];
  readonly #zones: ("blue" | "green")[];
  readonly #remote: LivePod[] = [];
  readonly #local: LivePod[] = [];
  readonly #byNamespace: Map<string, LocalNamespace>;
  #seq = 0;
  #flips = 0;
  #edits = 0;
  #namespaceFlips = 0;
  #created = 0;

  constructor(basis: ChurnBasis) {
    this.#basis = basis;
    const random = rng(basis.seed ^ 0x5eed);
    this.#pattern = shuffle(
      random,
      CHURN_KINDS.flatMap((kind) => Array<ChurnKind>(MIX[kind]).fill(kind)),
    );
    this.#flipOrder = shuffle(random, basis.flipPods.map((_, i) => i));
    this.#roles = basis.flipPods.map((p) => p.role);
    this.#zones = basis.flipNamespaces.map((n) => n.zone);
    this.#byNamespace = new Map(basis.localNamespaces.map((n) => [n.name, n]));
  }

  /** The next change. */
  next(): ChurnOp {
    const seq = this.#seq++;
    let kind = this.#pattern[seq % this.#pattern.length];
    if (kind === "pod-label" && this.#basis.flipPods.length === 0) kind = "policy-edit";
    if (kind === "namespace-label" && this.#basis.flipNamespaces.length === 0) kind = "policy-edit";
    if (kind === "remote-delete" && this.#remote.length < DELETE_AFTER) kind = "remote-create";
    if (kind === "local-delete" && this.#local.length < DELETE_AFTER) kind = "local-create";
    switch (kind) {
      case "pod-label":
        return this.#podLabel(seq);
      case "policy-edit":
        return this.#policyEdit(seq);
      case "namespace-label":
        return this.#namespaceLabel(seq);
      case "remote-create":
      case "local-create":
        return this.#create(seq, kind);
      case "remote-delete":
      case "local-delete":
        return this.#delete(seq, kind);
    }
  }

  #podLabel(seq: number): ChurnOp {
    const i = this.#flipOrder[this.#flips++ % this.#flipOrder.length];
    const target = this.#basis.flipPods[i];
    const role = this.#roles[i] = this.#roles[i] === "client" ? "idle" : "client";
    return {
      seq,
      kind: "pod-label",
      object: `Pod ${target.namespace}/${target.name}`,
      target: `Pod ${target.namespace}/${target.name} role=${role}`,
      request: {
        method: "PATCH",
        path: `/api/v1/namespaces/${target.namespace}/pods/${target.name}`,
        body: { metadata: { labels: { role } } },
      },
      token: { kind: "ips", ips: [target.ip], enter: role === "client" },
      expected: this.#byNamespace.get(target.namespace)!.vfKeys,
    };
  }

  #policyEdit(seq: number): ChurnOp {
    const k = this.#edits++;
    const locals = this.#basis.localNamespaces;
    const local = locals[k % locals.length];
    const port = EDIT_PORT_MIN + (k % EDIT_PORT_COUNT);
    return {
      seq,
      kind: "policy-edit",
      object: `MultiNetworkPolicy ${local.name}/${local.anchor}`,
      target: `MultiNetworkPolicy ${local.name}/${local.anchor} port=${port}`,
      request: {
        method: "PATCH",
        path: `${CNI}/namespaces/${local.name}/multi-networkpolicies/${local.anchor}`,
        body: { spec: { ingress: anchorIngress(port, local.anchorRange) } },
      },
      token: { kind: "port", port },
      expected: local.vfKeys,
    };
  }

  #namespaceLabel(seq: number): ChurnOp {
    const i = this.#namespaceFlips++ % this.#basis.flipNamespaces.length;
    const target = this.#basis.flipNamespaces[i];
    const zone = this.#zones[i] = this.#zones[i] === "blue" ? "green" : "blue";
    return {
      seq,
      kind: "namespace-label",
      object: `Namespace ${target.name}`,
      target: `Namespace ${target.name} zone=${zone}`,
      request: {
        method: "PATCH",
        path: `/api/v1/namespaces/${target.name}`,
        body: { metadata: { labels: { zone } } },
      },
      token: { kind: "ips", ips: target.tokenIps, enter: zone === "blue" },
      expected: target.affects,
    };
  }

  #create(seq: number, kind: "remote-create" | "local-create"): ChurnOp {
    const k = this.#created++;
    const locals = this.#basis.localNamespaces;
    const namespace = locals[k % locals.length];
    const local = kind === "local-create";
    const name = `churn-${local ? "l" : "r"}-${k}`;
    const ip = podIp(CHURN_IP_BASE + (k % 100_000));
    const manifest: Manifest = forApi(pod(namespace.name, name, {
      node: local ? this.#basis.node : remoteNode(1 + (k % this.#basis.nodes)),
      // Local churn pods are nobody's peer (no label a generic peer selects); remote ones are
      // their anchor's (role client).
      labels: local ? { churn: "local" } : { churn: "remote", role: "client" },
      nets: { [namespace.network]: ip },
      pci: { [namespace.network]: pciAddress(local ? 0xaf : 0x7e, k % 2048) },
      ports: [{ name: "http", containerPort: 8080 }],
    }));
    (local ? this.#local : this.#remote).push({ namespace, name, ip });
    const key = `${namespace.name}/${name}/${namespace.network}/net1`;
    return {
      seq,
      kind,
      object: `Pod ${namespace.name}/${name}`,
      target: `Pod ${namespace.name}/${name} created`,
      request: {
        method: "POST",
        path: `/api/v1/namespaces/${namespace.name}/pods`,
        body: manifest,
      },
      token: local ? { kind: "added", prefix: `${namespace.name}/${name}/` } : {
        kind: "ips",
        ips: [ip],
        enter: true,
      },
      expected: local ? [key] : namespace.vfKeys,
    };
  }

  #delete(seq: number, kind: "remote-delete" | "local-delete"): ChurnOp {
    const local = kind === "local-delete";
    const victim = (local ? this.#local : this.#remote).shift()!;
    const { namespace, name, ip } = victim;
    return {
      seq,
      kind,
      object: `Pod ${namespace.name}/${name}`,
      target: `Pod ${namespace.name}/${name} deleted`,
      request: {
        method: "DELETE",
        // No kubelet confirms a graceful deletion: delete at once.
        path: `/api/v1/namespaces/${namespace.name}/pods/${name}?gracePeriodSeconds=0`,
      },
      token: local
        ? { kind: "removed", prefix: `${namespace.name}/${name}/` }
        : { kind: "ips", ips: [ip], enter: false },
      expected: local ? [`${namespace.name}/${name}/${namespace.network}/net1`] : namespace.vfKeys,
    };
  }
}

function shuffle<T>(random: () => number, items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

/** The collection path a manifest is created in. */
export function collectionPath(manifest: Manifest): string {
  const meta = manifest.metadata as { namespace?: string };
  switch (manifest.kind) {
    case "Namespace":
      return "/api/v1/namespaces";
    case "Pod":
      return `/api/v1/namespaces/${meta.namespace}/pods`;
    case "NetworkAttachmentDefinition":
      return `/apis/k8s.cni.cncf.io/v1/namespaces/${meta.namespace}/network-attachment-definitions`;
    case "MultiNetworkPolicy":
      return `${CNI}/namespaces/${meta.namespace}/multi-networkpolicies`;
    default:
      throw new Error(`no collection for kind ${String(manifest.kind)}`);
  }
}
