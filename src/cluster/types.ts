/**
 * The cluster objects the agent reasons about, reduced to the fields that
 * matter for policy and already validated. Parsing (./parse.ts) turns raw
 * Kubernetes JSON into these; everything downstream trusts them.
 */
import { escapeControls } from "../log/quote.ts";

/** The label the API server puts on every namespace, naming it. */
export const NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name";

/** Label key/value pairs. */
export type Labels = Readonly<Record<string, string>>;

/** A label selector requirement operator. */
export type SelectorOperator = "In" | "NotIn" | "Exists" | "DoesNotExist";

/** One `matchExpressions` entry. */
export interface SelectorRequirement {
  key: string;
  operator: SelectorOperator;
  values: string[];
}

/** A Kubernetes label selector; an empty one selects everything. */
export interface LabelSelector {
  matchLabels: Labels;
  matchExpressions: SelectorRequirement[];
}

/** Transport protocols a policy port can name. */
export type Protocol = "TCP" | "UDP" | "SCTP";

/** A named container port, used to resolve named policy ports. */
export interface ContainerPort {
  name: string;
  port: number;
  protocol: Protocol;
}

/** A network the pod asked for in `k8s.v1.cni.cncf.io/networks`. */
export interface NetworkSelection {
  /** `namespace/name` of the NetworkAttachmentDefinition. */
  network: string;
  interfaceName?: string;
}

/** One `k8s.v1.cni.cncf.io/network-status` entry: an attached interface. */
export interface NetworkStatus {
  /** `namespace/name` of the network (namespace defaults to the pod's). */
  network: string;
  interfaceName: string;
  ips: string[];
  mac?: string;
  pciAddress?: string;
  isDefault: boolean;
}

/** `namespace/name` of a pod: how the agent keys pods (the unit the sync re-renders). */
export function podKey(pod: Pick<Pod, "namespace" | "name">): string {
  return `${pod.namespace}/${pod.name}`;
}

/** Pod phase as reported by the kubelet. */
export type PodPhase = "Pending" | "Running" | "Succeeded" | "Failed" | "Unknown";

/** A pod, with what policy needs of it. */
export interface Pod {
  uid: string;
  namespace: string;
  name: string;
  labels: Labels;
  nodeName: string;
  hostNetwork: boolean;
  phase: PodPhase;
  containerPorts: ContainerPort[];
  networks: NetworkSelection[];
  networkStatus: NetworkStatus[];
}

/** A namespace, with its labels for namespaceSelectors. */
export interface Namespace {
  name: string;
  labels: Labels;
}

/** A NetworkAttachmentDefinition reduced to its identity and CNI plugin type. */
export interface NetworkAttachmentDefinition {
  namespace: string;
  name: string;
  /** The main plugin's type (the config's `type`, or a conflist's first plugin). */
  pluginType: string;
  /**
   * The device-plugin resource its VFs come from (annotation
   * `k8s.v1.cni.cncf.io/resourceName`); "" when not set.
   */
  resourceName: string;
  /** The config's `vlan`: frames of the network are tagged with it on the wire; absent: none. */
  vlan?: number;
  /** True when the config's `trunk` lets pods send 802.1Q-tagged frames themselves. */
  trunk?: boolean;
}

/** A numeric or named port in a policy. */
export type PortRef = { kind: "number"; port: number } | { kind: "name"; name: string };

/** One `ports` entry of a policy rule. */
export interface PolicyPort {
  protocol: Protocol;
  /** Absent: every port of the protocol. */
  port?: PortRef;
  /** Only with a numeric port: the last port of an inclusive range. */
  endPort?: number;
}

/** An `ipBlock` peer. */
export interface IpBlock {
  cidr: string;
  except: string[];
}

/** One `from`/`to` entry. */
export type PolicyPeer =
  | { kind: "ipBlock"; ipBlock: IpBlock }
  | {
    kind: "selector";
    /** Absent: pods of the policy's namespace only. */
    namespaceSelector?: LabelSelector;
    /** Absent: every pod of the selected namespaces. */
    podSelector?: LabelSelector;
  };

/** One ingress or egress rule. A rule that failed validation grants nothing. */
export interface PolicyRule {
  /** Empty: every peer. */
  peers: PolicyPeer[];
  /** Empty: every port and protocol. */
  ports: PolicyPort[];
  /** Set when part of the rule was malformed; the rule then grants nothing. */
  invalid?: string;
}

/** Traffic directions, from the selected pod's point of view. */
export type Direction = "ingress" | "egress";

/** A MultiNetworkPolicy (v1beta1 or v1beta2). */
export interface MultiNetworkPolicy {
  namespace: string;
  name: string;
  /** Networks (`namespace/name`) from `k8s.v1.cni.cncf.io/policy-for`. */
  policyFor: string[];
  /**
   * Which pods of the namespace it selects; when malformed, every pod, and
   * the rules are then empty (fail closed: it isolates and grants nothing).
   */
  podSelector: LabelSelector;
  /** Directions the policy isolates, after defaulting. */
  policyTypes: Direction[];
  ingress: PolicyRule[];
  egress: PolicyRule[];
}

/** Everything the policy engine reads: a snapshot of the cluster. */
export interface ClusterState {
  pods: Pod[];
  namespaces: Namespace[];
  networks: NetworkAttachmentDefinition[];
  policies: MultiNetworkPolicy[];
}

/** The object an {@link ObjectError} is about, for code that acts on it (e.g. an Event). */
export interface ObjectReference {
  kind: string;
  namespace: string;
  name: string;
  uid?: string;
}

/** A problem with one object, naming the object and the field. */
export interface ObjectError {
  /** e.g. `MultiNetworkPolicy web/allow-db`. */
  object: string;
  /** The same object, structured; set where the producer knows it (not part of the text). */
  ref?: ObjectReference;
  /** e.g. `spec.ingress[0].from[1].ipBlock.cidr`. */
  field: string;
  message: string;
  /** The Event reason a Warning about it carries, where it is not the default. */
  reason?: string;
}

/** Formats an {@link ObjectError} as the one line users see. */
export function formatObjectError(error: ObjectError): string {
  return escapeControls(`${error.object}: ${error.field}: ${error.message}`);
}
