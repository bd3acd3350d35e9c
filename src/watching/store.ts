/**
 * The agent's view of the cluster: raw API objects from the informers, parsed
 * with the existing parse functions into the typed model, kept by key, and
 * turned into a {@link ClusterState} snapshot for the policy engine. Every
 * update returns what changed (old and new parsed value) or null when nothing
 * the policy can see changed. Bad objects never throw: their problems are
 * logged once per object version.
 */
import { PARSERS } from "../cluster/parse.ts";
import { isObject, type JsonObject } from "../cluster/reader.ts";
import {
  type ClusterState,
  formatObjectError,
  type MultiNetworkPolicy,
  type Namespace,
  type NetworkAttachmentDefinition,
  type ObjectError,
  type Pod,
} from "../cluster/types.ts";
import { log } from "../log/klog.ts";
import { nodeKey } from "../cluster/node_name.ts";

/** The kinds the agent watches. */
export type WatchedKind =
  | "Pod"
  | "Namespace"
  | "NetworkAttachmentDefinition"
  | "MultiNetworkPolicy";

/** Every watched kind, in a stable order. */
export const WATCHED_KINDS: readonly WatchedKind[] = [
  "Pod",
  "Namespace",
  "NetworkAttachmentDefinition",
  "MultiNetworkPolicy",
];

/** A change to one object, as parsed values (null: absent before / after). */
export type Change =
  | { kind: "Pod"; old: Pod | null; new: Pod | null }
  | { kind: "Namespace"; old: Namespace | null; new: Namespace | null }
  | {
    kind: "NetworkAttachmentDefinition";
    old: NetworkAttachmentDefinition | null;
    new: NetworkAttachmentDefinition | null;
  }
  | { kind: "MultiNetworkPolicy"; old: MultiNetworkPolicy | null; new: MultiNetworkPolicy | null };

type Parsed = Pod | Namespace | NetworkAttachmentDefinition | MultiNetworkPolicy;

/** `namespace/name` (or `name` for cluster-scoped objects) of a raw object; null when unreadable. */
export function rawKey(raw: unknown): string | null {
  if (!isObject(raw) || !isObject(raw.metadata)) return null;
  const { namespace, name } = raw.metadata;
  if (typeof name !== "string" || name === "") return null;
  return typeof namespace === "string" && namespace !== "" ? `${namespace}/${name}` : name;
}

function parse(
  kind: WatchedKind,
  raw: JsonObject,
): { value: Parsed | null; errors: ObjectError[] } {
  return PARSERS[kind](raw);
}

/**
 * Whether two parsed values are equal: the same JSON-like data, keys in the
 * same order (both come from the same parser).
 */
function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const aKeys = Object.keys(a);
  const bKeys = Object.keys(b);
  if (aKeys.length !== bKeys.length) return false;
  for (let i = 0; i < aKeys.length; i++) {
    const key = aKeys[i];
    if (key !== bKeys[i]) return false;
    if (
      !sameValue((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key])
    ) return false;
  }
  return true;
}

function keyOf(kind: WatchedKind, value: Parsed): string {
  return kind === "Namespace" ? value.name : `${(value as Pod).namespace}/${value.name}`;
}

/** The API object a problem was found in, as an Event can name it. */
export interface ObjectRef {
  kind: WatchedKind;
  apiVersion: string;
  /** `namespace/name`, or `name` for cluster-scoped objects. */
  key: string;
  uid: string;
}

/** An object parsed by {@link ClusterStore.prepare}, not yet stored. */
export interface PreparedObject {
  kind: WatchedKind;
  ref: ObjectRef;
  resourceVersion: string;
  value: Parsed | null;
  errors: ObjectError[];
  /** The object had no name: it is reported, never stored. */
  unnamed: boolean;
}

/** Called for each object problem that is logged (once per object version). */
export type ObjectErrorListener = (ref: ObjectRef, errors: ObjectError[]) => void;

/** Parsed objects by kind and key, with change detection and a cached snapshot. */
export class ClusterStore {
  readonly #objects = new Map<WatchedKind, Map<string, Parsed>>(
    WATCHED_KINDS.map((kind) => [kind, new Map()]),
  );
  /** Per object, the resourceVersion whose problems were last logged. */
  readonly #reported = new Map<string, string>();
  /** Pods by node ({@link nodeKey} of `spec.nodeName`), then key. */
  readonly #podsByNode = new Map<string, Map<string, Pod>>();
  /** Per kind, the values as an array; dropped when that kind changes. */
  readonly #lists = new Map<WatchedKind, Parsed[]>();
  #snapshot: ClusterState | null = null;
  #version = 0;

  constructor(private readonly onObjectErrors: ObjectErrorListener = () => {}) {}

  /** Increases with every change; lets callers tell whether the snapshot moved. */
  get version(): number {
    return this.#version;
  }

  /** Adds or replaces an object from the API; returns the change, or null when none is visible. */
  upsert(kind: WatchedKind, raw: unknown): Change | null {
    return this.apply(this.prepare(kind, raw));
  }

  /**
   * Parses an object from the API without touching the store, so that the raw
   * object need not be kept until {@link apply} takes the result.
   */
  prepare(kind: WatchedKind, raw: unknown): PreparedObject {
    const key = rawKey(raw);
    if (!isObject(raw) || key === null) {
      return {
        kind,
        ref: { kind, key: "(unnamed)", apiVersion: "", uid: "" },
        resourceVersion: "",
        value: null,
        errors: [{
          object: `${kind} (unnamed)`,
          field: "metadata.name",
          message: "missing: object ignored",
        }],
        unnamed: true,
      };
    }
    let parsed: { value: Parsed | null; errors: ObjectError[] };
    try {
      parsed = parse(kind, raw);
    } catch (error) {
      parsed = {
        value: null,
        errors: [{ object: `${kind} ${key}`, field: "(object)", message: String(error) }],
      };
    }
    const metadata = raw.metadata as JsonObject;
    return {
      kind,
      ref: {
        kind,
        key,
        apiVersion: typeof raw.apiVersion === "string" ? raw.apiVersion : "",
        uid: typeof metadata.uid === "string" ? metadata.uid : "",
      },
      resourceVersion: typeof metadata.resourceVersion === "string" ? metadata.resourceVersion : "",
      value: parsed.value,
      errors: parsed.errors,
      unnamed: false,
    };
  }

  /** Stores what {@link prepare} parsed; returns the change, or null when none is visible. */
  apply(prepared: PreparedObject): Change | null {
    const { kind, ref } = prepared;
    if (prepared.unnamed) {
      this.#report(ref, "", prepared.errors);
      return null;
    }
    if (prepared.errors.length > 0) this.#report(ref, prepared.resourceVersion, prepared.errors);
    else this.#reported.delete(`${kind} ${ref.key}`);
    if (prepared.value === null) return this.#delete(kind, ref.key);
    return this.#set(kind, prepared.value);
  }

  /** Removes an object deleted in the API; returns the change, or null if it was unknown. */
  remove(kind: WatchedKind, raw: unknown): Change | null {
    const key = rawKey(raw);
    if (key === null) return null;
    this.#reported.delete(`${kind} ${key}`);
    return this.#delete(kind, key);
  }

  #delete(kind: WatchedKind, key: string): Change | null {
    const map = this.#objects.get(kind)!;
    const old = map.get(key);
    if (!old) return null;
    map.delete(key);
    if (kind === "Pod") this.#indexPod(key, old as Pod, null);
    this.#changed(kind);
    return { kind, old, new: null } as Change;
  }

  /** The current state, for the policy engine; the same object until the next change. */
  snapshot(): ClusterState {
    this.#snapshot ??= {
      pods: this.list<Pod>("Pod"),
      namespaces: this.list<Namespace>("Namespace"),
      networks: this.list<NetworkAttachmentDefinition>("NetworkAttachmentDefinition"),
      policies: this.list<MultiNetworkPolicy>("MultiNetworkPolicy"),
    };
    return this.#snapshot;
  }

  /** Every known object of a kind (cached until that kind changes). */
  list<T extends Parsed>(kind: WatchedKind): T[] {
    let values = this.#lists.get(kind);
    if (!values) {
      values = [...this.#objects.get(kind)!.values()];
      this.#lists.set(kind, values);
    }
    return values as T[];
  }

  /** One object by key (`namespace/name`, or `name` for namespaces). */
  get<T extends Parsed>(kind: WatchedKind, key: string): T | undefined {
    return this.#objects.get(kind)!.get(key) as T | undefined;
  }

  /** The pods whose `spec.nodeName` is the same node as `node` (first DNS label, any case). */
  podsOnNode(node: string): Pod[] {
    const key = nodeKey(node);
    return key === "" ? [] : [...(this.#podsByNode.get(key)?.values() ?? [])];
  }

  /** How many objects of a kind are known. */
  count(kind: WatchedKind): number {
    return this.#objects.get(kind)!.size;
  }

  #set(kind: WatchedKind, value: Parsed): Change | null {
    const map = this.#objects.get(kind)!;
    const key = keyOf(kind, value);
    const old = map.get(key);
    if (old && sameValue(old, value)) return null;
    map.set(key, value);
    if (kind === "Pod") this.#indexPod(key, (old as Pod | undefined) ?? null, value as Pod);
    this.#changed(kind);
    return { kind, old: old ?? null, new: value } as Change;
  }

  #changed(kind: WatchedKind): void {
    this.#lists.delete(kind);
    this.#snapshot = null;
    this.#version++;
  }

  #indexPod(key: string, old: Pod | null, now: Pod | null): void {
    if (old) {
      const byKey = this.#podsByNode.get(nodeKey(old.nodeName));
      byKey?.delete(key);
      if (byKey?.size === 0) this.#podsByNode.delete(nodeKey(old.nodeName));
    }
    if (now) {
      let byKey = this.#podsByNode.get(nodeKey(now.nodeName));
      if (!byKey) this.#podsByNode.set(nodeKey(now.nodeName), byKey = new Map());
      byKey.set(key, now);
    }
  }

  #report(ref: ObjectRef, rv: string, errors: ObjectError[]): void {
    const id = `${ref.kind} ${ref.key}`;
    if (rv !== "" && this.#reported.get(id) === rv) return;
    this.#reported.set(id, rv);
    for (const error of errors) log.warning(formatObjectError(error));
    this.onObjectErrors(ref, errors);
  }
}
